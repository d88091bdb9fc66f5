import { parseArgs } from 'node:util';
import { readIssuesFile } from '../shared/adapters/issues-file.js';
import { FanoutError } from '../shared/domain/errors.js';
import { type Issue, mockIssues, parseRunId } from '../shared/domain/job.js';
import { formatReport } from '../shared/domain/report.js';
import { parseDuration, usdToMicros } from '../shared/domain/units.js';
import type { Dispatcher } from '../shared/local/dispatcher.js';
import { runLocal } from '../shared/local/local-run.js';
import { AGENT_HELP, AGENT_OPTIONS, agentFromFlags } from './agent-flags.js';
import { LiveTable } from './live-table.js';
import { decimal, integer, joinNegativeNumbers } from './options.js';

export const RUN_HELP = `Usage: fanout run [options]

Runs a backlog of issues through N worker processes on this machine, with the
embedded DynamoDB engine and a persisted queue under the state dir. An unfinished
run in the state dir is resumed: nothing is lost, nothing done is done again.

Issues (one of; none resumes the unfinished run):
  --mock-issues N        N generated issues (the simulate agent's test mode)
  --issues-file PATH     a JSON array or JSONL file of {repo, number, title, body?, labels?, url?}

Run:
  --workers N            worker processes, 1-1000 (default 3)
  --budget-usd USD       hard budget of the run, >= 0 (default 10)
  --timeout DURATION     per invocation; the worker process is killed after it,
                         and it is also the queue's visibility timeout (default 5m)
  --batch-size N         records per invocation, 1-10 (default 1)
  --max-receive-count N  deliveries before a message goes to the dead-letter queue (default 3)
  --state-dir PATH       where state, queue and workspaces live (default .fanout)
  --run-id ID            name the run (default: generated)

${AGENT_HELP}

Ctrl-C once stops taking new work and lets running jobs finish; twice returns
them to the queue at once. Either way the report is written and the next
\`fanout run\` resumes.`;

export async function runCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args: joinNegativeNumbers(args),
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      'mock-issues': { type: 'string' },
      'issues-file': { type: 'string' },
      workers: { type: 'string' },
      'budget-usd': { type: 'string' },
      timeout: { type: 'string' },
      'batch-size': { type: 'string' },
      'max-receive-count': { type: 'string' },
      'state-dir': { type: 'string' },
      'run-id': { type: 'string' },
      ...AGENT_OPTIONS,
    },
  });
  if (values.help) {
    console.log(RUN_HELP);
    return 0;
  }
  // Every flag is checked before anything is started or written.
  const workers = integer(values.workers, '--workers', 3, 1, 1000);
  const budgetUsd = decimal(values['budget-usd'], '--budget-usd', 10, 0, 1_000_000);
  const timeoutMs = parseDuration(values.timeout ?? '5m', '--timeout');
  if (timeoutMs < 1000) throw new FanoutError('INVALID_INPUT', '--timeout must be at least 1s');
  const batchSize = integer(values['batch-size'], '--batch-size', 1, 1, 10);
  const maxReceiveCount = integer(values['max-receive-count'], '--max-receive-count', 3, 1, 1000);
  if (values['mock-issues'] !== undefined && values['issues-file'] !== undefined) {
    throw new FanoutError('INVALID_INPUT', 'give --mock-issues or --issues-file, not both');
  }
  let issues: Issue[] = [];
  if (values['mock-issues'] !== undefined)
    issues = mockIssues(integer(values['mock-issues'], '--mock-issues', 0, 1, 100_000));
  if (values['issues-file'] !== undefined) issues = await readIssuesFile(values['issues-file']);

  // Agent flags set a new run's agent; on a resumed run they replace its agent.
  const agent = agentFromFlags(values);
  const table = new LiveTable(process.stdout, Boolean(process.stdout.isTTY));
  let dispatcher: Dispatcher | undefined;
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      table.message(
        'Stopping: no new work; running jobs finish. Ctrl-C again to return them to the queue now.',
      );
      dispatcher?.stop(false);
    } else {
      table.message('Returning running jobs to the queue.');
      dispatcher?.stop(true);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    const report = await runLocal({
      stateDir: values['state-dir'] ?? '.fanout',
      workers,
      batchSize,
      timeoutMs,
      maxReceiveCount,
      budgetMicros: usdToMicros(budgetUsd),
      budgetGiven: values['budget-usd'] !== undefined,
      issues,
      ...(agent ? { agent } : {}),
      ...(values['run-id'] !== undefined ? { runId: parseRunId(values['run-id']) } : {}),
      onDispatcher: (d) => {
        dispatcher = d;
      },
      onEvent: (event) => {
        table.onEvent(event).catch(() => undefined);
      },
    });
    table.finish(report);
    table.message('');
    table.message(formatReport(report));
    table.message(`\nReport written to ${values['state-dir'] ?? '.fanout'}/runs/${report.runId}/report.json`);
    return report.complete ? 0 : 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
