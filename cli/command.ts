import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type AwsClients, TARGET_OPTIONS } from './targets.js';

/** What a command that acts on a target is handed: AWS clients (tests pass their own) and where to print. */
export interface CommandDeps {
  readonly aws?: AwsClients;
  readonly out?: (text: string) => void;
}

export const printer = (deps: CommandDeps) =>
  deps.out ?? ((text: string) => process.stdout.write(`${text}\n`));

const COMMON_FLAGS = {
  'run-id': { type: 'string' },
  ...TARGET_OPTIONS,
} as const;

/** The flags of a command, strictly, with --help; undefined when it printed the help. */
export function commandFlags<const O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  own: O,
  help: string,
  out: (text: string) => void,
) {
  const config = {
    args,
    strict: true as const,
    options: { help: { type: 'boolean', short: 'h' }, ...own } as {
      help: { type: 'boolean'; short: 'h' };
    } & O,
  };
  const { values } = parseArgs(config);
  if ((values as { help?: boolean }).help) {
    out(help);
    return undefined;
  }
  return values;
}

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
  return commandFlags(args, { ...COMMON_FLAGS, ...own } as typeof COMMON_FLAGS & O, help, out);
}
