#!/usr/bin/env -S npx tsx
import { readFileSync } from 'node:fs';
import { FanoutError } from '../shared/domain/errors.js';

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
  dashboard  the run in a browser, live: fleet, budget, throughput, jobs, dead letters
  bench    measure speedup, overhead, scale and AWS cost (--quick for a short set)
  help     this help, or a command's: fanout help send (--version: the version)

Quick start: fanout run --workers 3 --mock-issues 5`;

interface Command {
  readonly run: (args: string[]) => Promise<number>;
  readonly help: string;
}

/**
 * Each command's module is loaded when it is asked for: `fanout run` does not parse the
 * S3, SQS and CloudFormation clients that send, status and redrive use on AWS (the
 * command's start was 0.6 s before it did anything, a quarter of it compiling modules).
 */
const commands: Record<string, () => Promise<Command>> = {
  run: async () => {
    const m = await import('./run-command.js');
    return { run: m.runCommand, help: m.RUN_HELP };
  },
  send: async () => {
    const m = await import('./send-command.js');
    return { run: (args) => m.sendCommand(args), help: m.SEND_HELP };
  },
  status: async () => {
    const m = await import('./status-command.js');
    return { run: (args) => m.statusCommand(args), help: m.STATUS_HELP };
  },
  report: async () => {
    const m = await import('./report-command.js');
    return { run: (args) => m.reportCommand(args), help: m.REPORT_HELP };
  },
  redrive: async () => {
    const m = await import('./redrive-command.js');
    return { run: (args) => m.redriveCommand(args), help: m.REDRIVE_HELP };
  },
  repair: async () => {
    const m = await import('./repair-command.js');
    return { run: (args) => m.repairCommand(args), help: m.REPAIR_HELP };
  },
  dashboard: async () => {
    const m = await import('./dashboard-command.js');
    return { run: (args) => m.dashboardCommand(args), help: m.DASHBOARD_HELP };
  },
  bench: async () => {
    const m = await import('./bench-command.js');
    return { run: (args) => m.benchCommand(args), help: m.BENCH_HELP };
  },
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
    console.log(topic ? (await topic()).help : HELP);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    console.error(`fanout: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  return (await command()).run(rest);
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
