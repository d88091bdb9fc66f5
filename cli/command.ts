import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type AwsClients, TARGET_OPTIONS } from './targets.js';

/** What a command that acts on a target is handed: AWS clients (tests pass their own) and where to print. */
export interface CommandDeps {
  readonly aws?: AwsClients;
  readonly out?: (text: string) => void;
}

export const printer = (deps: CommandDeps) =>
  deps.out ?? ((text: string) => process.stdout.write(`${text}\n`));

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  'run-id': { type: 'string' },
  ...TARGET_OPTIONS,
} as const;

/**
 * The flags of a command that acts on a target (`status`, `report`, `redrive`): its own,
 * the target's, --run-id and --help, strictly. Undefined when it printed the help.
 */
export function targetCommandFlags<const O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  own: O,
  help: string,
  out: (text: string) => void,
) {
  const config = { args, strict: true as const, options: { ...COMMON, ...own } as typeof COMMON & O };
  const { values } = parseArgs(config);
  if ((values as { help?: boolean }).help) {
    out(help);
    return undefined;
  }
  return values;
}
