#!/usr/bin/env -S npx tsx
import { readFileSync } from 'node:fs';
import { FanoutError } from '../shared/domain/errors.js';
import { BENCH_HELP, benchCommand } from './bench-command.js';
import { REDRIVE_HELP, redriveCommand } from './redrive-command.js';
import { REPAIR_HELP, repairCommand } from './repair-command.js';
import { REPORT_HELP, reportCommand } from './report-command.js';
import { RUN_HELP, runCommand } from './run-command.js';
import { SEND_HELP, sendCommand } from './send-command.js';
import { STATUS_HELP, statusCommand } from './status-command.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const HELP = `Usage: fanout <command> [options]

Commands:
  run      run a backlog through N workers on this machine
  send     send issues (GitHub, a file, mock) to a run, on AWS or locally
  status   the fleet: workers, queue, outcomes, spend, throughput, ETA
  report   one run's jobs and totals, as a table, JSON or CSV
  redrive  put the dead-letter queue's jobs back on the queue
  repair   rebuild the local queue from the state table (after a damaged journal)
  bench    measure speedup, overhead, scale and AWS cost (--quick for a short set)
  help     this help, or a command's: fanout help send (--version: the version)

Quick start: fanout run --workers 3 --mock-issues 5`;

const commands: Record<string, { run: (args: string[]) => Promise<number>; help: string }> = {
  run: { run: runCommand, help: RUN_HELP },
  send: { run: (args) => sendCommand(args), help: SEND_HELP },
  status: { run: (args) => statusCommand(args), help: STATUS_HELP },
  report: { run: (args) => reportCommand(args), help: REPORT_HELP },
  redrive: { run: (args) => redriveCommand(args), help: REDRIVE_HELP },
  repair: { run: (args) => repairCommand(args), help: REPAIR_HELP },
  bench: { run: (args) => benchCommand(args), help: BENCH_HELP },
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(`fanout ${VERSION}`);
    return 0;
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const wanted = name === 'help' ? rest[0] : undefined;
    const topic = wanted ? commands[wanted] : undefined;
    if (wanted && !topic) {
      console.error(`fanout: no command "${wanted}"\n\n${HELP}`);
      return 2;
    }
    console.log(topic ? topic.help : HELP);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`fanout: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof FanoutError) {
      console.error(`fanout: ${error.message} [${error.code}]`);
      process.exitCode =
        error.code === 'INVALID_INPUT' ||
        error.code === 'STATE_DIR_NOT_WRITABLE' ||
        error.code === 'STATE_DAMAGED'
          ? 2
          : 1;
    } else if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`fanout: ${(error as Error).message}; see fanout help`);
      process.exitCode = 2;
    } else {
      console.error('fanout: unexpected error:', error);
      process.exitCode = 1;
    }
  },
);
