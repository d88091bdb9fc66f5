import { parseArgs } from 'node:util';
import { readIssuesFile } from '../shared/adapters/issues-file.js';
import type { AgentConfig } from '../shared/agents/index.js';
import { loadPriceTable, priceOf } from '../shared/agents/pricing.js';
import { FanoutError } from '../shared/domain/errors.js';
import { type Issue, mockIssues } from '../shared/domain/job.js';
import { formatReport } from '../shared/domain/report.js';
import { parseDuration, parseDurationRange, parseUsdRange, usdToMicros } from '../shared/domain/units.js';
import type { Dispatcher } from '../shared/local/dispatcher.js';
import { runLocal } from '../shared/local/local-run.js';
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

The agent:
  --agent NAME           simulate (default) or llm
  --model ID             llm: scripted:demo (offline, mock issues) or a Bedrock model id of
                         shared/agents/model-prices.json (AWS credentials; GITHUB_TOKEN for
                         private repositories). The patch stays in the job's workspace.
  --max-cost-per-job-usd USD   llm: a job's own spending cap (default 2)
  --max-steps N          llm: model calls per job (default 30)
  --publish MODE         llm: none (default: the patch stays in the workspace), comment
                         (summary and patch on the issue) or pr (a draft pull request
                         from branch fanout/issue-N); needs GITHUB_TOKEN with write access

The simulate agent:
  --duration D           time per job: 1s, 250ms, 2m or a range 1s-3s (default 1s-3s)
  --fail-rate R          share of jobs that fail, 0-1 (default 0)
  --cost-usd USD         cost per job, or a range 0.01-0.05 (default 0.02-0.08)
  --seed N               the same seed repeats a run exactly (default 42)

Ctrl-C once stops taking new work and lets running jobs finish; twice returns
them to the queue at once. Either way the report is written and the next
\`fanout run\` resumes.`;

function publishMode(value: string | undefined): 'none' | 'comment' | 'pr' {
  if (value === undefined || value === 'none' || value === 'comment' || value === 'pr')
    return value ?? 'none';
  throw new FanoutError('INVALID_INPUT', `--publish must be none, comment or pr, not "${value}"`);
}

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
      duration: { type: 'string' },
      'fail-rate': { type: 'string' },
      'cost-usd': { type: 'string' },
      seed: { type: 'string' },
      agent: { type: 'string' },
      model: { type: 'string' },
      'max-cost-per-job-usd': { type: 'string' },
      'max-steps': { type: 'string' },
      publish: { type: 'string' },
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
  const durationMs = parseDurationRange(values.duration ?? '1s-3s', '--duration');
  const failRate = decimal(values['fail-rate'], '--fail-rate', 0, 0, 1);
  const costMicros = parseUsdRange(values['cost-usd'] ?? '0.02-0.08', '--cost-usd');
  const seed = integer(values.seed, '--seed', 42, 0, 2 ** 31 - 1);
  if (values['mock-issues'] !== undefined && values['issues-file'] !== undefined) {
    throw new FanoutError('INVALID_INPUT', 'give --mock-issues or --issues-file, not both');
  }
  let issues: Issue[] = [];
  if (values['mock-issues'] !== undefined)
    issues = mockIssues(integer(values['mock-issues'], '--mock-issues', 0, 1, 100_000));
  if (values['issues-file'] !== undefined) issues = await readIssuesFile(values['issues-file']);

  const agentFlagGiven = ['duration', 'fail-rate', 'cost-usd', 'seed', 'agent', 'model'].some(
    (flag) => flag in values,
  );
  const agentName = values.agent ?? 'simulate';
  if (agentName !== 'simulate' && agentName !== 'llm') {
    throw new FanoutError('INVALID_INPUT', `--agent must be simulate or llm, not "${agentName}"`);
  }
  if (agentName === 'llm' && !values.model) {
    throw new FanoutError(
      'INVALID_INPUT',
      '--agent llm needs --model: scripted:demo (offline) or a Bedrock model id of the price table',
    );
  }
  if (agentName === 'llm') priceOf(loadPriceTable(), values.model as string); // an unknown model fails here, before anything starts
  const agent: AgentConfig =
    agentName === 'llm'
      ? {
          kind: 'llm',
          model: values.model as string,
          maxSteps: integer(values['max-steps'], '--max-steps', 30, 1, 500),
          maxOutputTokens: 4096,
          maxCostPerJobMicros: usdToMicros(
            decimal(values['max-cost-per-job-usd'], '--max-cost-per-job-usd', 2, 0, 10_000),
          ),
          publish: publishMode(values.publish),
        }
      : { kind: 'simulate', durationMs, failRate, costMicros, seed };
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
      issues,
      // Agent flags set a new run's agent; on a resumed run only the ones given change it.
      ...(agentFlagGiven ? { agent } : {}),
      ...(values['run-id'] ? { runId: values['run-id'] } : {}),
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
