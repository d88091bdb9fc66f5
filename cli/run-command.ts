import { existsSync } from 'node:fs';
import { freemem } from 'node:os';
import { parseArgs } from 'node:util';
import { readIssuesFile } from '../shared/adapters/issues-file.js';
import { ProcessSandbox, refuseUnisolated } from '../shared/adapters/process-sandbox.js';
import { DEMO_MODEL } from '../shared/agents/model-ids.js';
import { BUNDLED_PRICES, priceOf } from '../shared/agents/pricing.js';
import { type AgentConfig, DEFAULT_AGENT } from '../shared/domain/agent-settings.js';
import { FanoutError } from '../shared/domain/errors.js';
import { type Issue, mockIssues, parseRunId } from '../shared/domain/job.js';
import { formatUsd, parseDuration, usdToMicros } from '../shared/domain/units.js';
import type { Dispatcher } from '../shared/local/dispatcher.js';
import { runLocal } from '../shared/local/local-run.js';
import { readCurrentRun } from '../shared/local/state-dir.js';
import type { SandboxIsolation } from '../shared/ports/sandbox.js';
import { AGENT_HELP, AGENT_OPTIONS, agentFromFlags } from './agent-flags.js';
import { formatReport } from './format.js';
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
  // The last second at least of each invocation is kept for the checkpoint: below 2 s no job could work.
  if (timeoutMs < 2000) throw new FanoutError('INVALID_INPUT', '--timeout must be at least 2s');
  checkMemoryFor(workers);
  const batchSize = integer(values['batch-size'], '--batch-size', 1, 1, 10);
  const maxReceiveCount = integer(values['max-receive-count'], '--max-receive-count', 3, 1, 1000);
  if (values['mock-issues'] !== undefined && values['issues-file'] !== undefined) {
    throw new FanoutError('INVALID_INPUT', 'give --mock-issues or --issues-file, not both');
  }
  let issues: Issue[] = [];
  if (values['mock-issues'] !== undefined)
    issues = mockIssues(integer(values['mock-issues'], '--mock-issues', 0, 1, 100_000));
  if (values['issues-file'] !== undefined) issues = await readIssuesFile(values['issues-file']);

  // Agent flags set a new run's agent; on a resumed run they replace its agent. The offline
  // demo runs its known commands (the demo repository's tests) in the sandbox unless told not
  // to: it shows the whole workflow. A real model's run runs nothing unless --sandbox says so.
  const flagged = agentFromFlags(values);
  const agent =
    flagged?.kind === 'llm' && flagged.model === DEMO_MODEL && values.sandbox === undefined
      ? { ...flagged, sandbox: 'auto' as const }
      : flagged;
  const stateDir = values['state-dir'] ?? '.fanout';
  if (issues.length === 0 && !hasRunToResume(stateDir, values['run-id'])) {
    // Nothing to start and nothing to resume: say so, and create nothing.
    console.log(
      `Nothing to do: no issues given (--mock-issues N or --issues-file PATH) and no unfinished run in ${stateDir} ` +
        'to resume (fanout send --local adds one).',
    );
    return 0;
  }
  if (agent?.kind === 'llm' && agent.sandbox) console.log(await describeSandbox(agent.sandbox, stateDir));
  const worst = worstCaseOfOneJob(agent ?? DEFAULT_AGENT);
  if (issues.length > 0 && worst !== undefined && usdToMicros(budgetUsd) < worst) {
    console.log(
      `Warning: the budget (${formatUsd(usdToMicros(budgetUsd))}) is below one job's worst case (${formatUsd(worst)}): ` +
        'jobs that cost money will be SKIPPED. Raise --budget-usd to run them.',
    );
  }
  const table = new LiveTable(process.stdout, Boolean(process.stdout.isTTY));
  let dispatcher: Dispatcher | undefined;
  let interrupts = 0;
  let lastInterrupt = 0;
  const onSigint = () => {
    // Presses closer than half a second are one: a terminal or a runner may relay one twice.
    const now = Date.now();
    if (now - lastInterrupt < 500) return;
    lastInterrupt = now;
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
      stateDir,
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
    table.message(`\nReport written to ${stateDir}/runs/${report.runId}/report.json`);
    return report.complete ? 0 : 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Whether `fanout run` without issues has a run to go on with: an unfinished current run, or the named one. */
function hasRunToResume(stateDir: string, runId: string | undefined): boolean {
  if (!existsSync(stateDir)) return false;
  if (runId !== undefined) return true;
  const current = readCurrentRun(stateDir);
  return current !== undefined && !current.finished;
}

/** The most one job can cost before its first result, when the agent can say (a warning, not a limit). */
function worstCaseOfOneJob(agent: AgentConfig): number | undefined {
  if (agent.kind === 'simulate') return agent.costMicros.max > 0 ? agent.costMicros.max : undefined;
  // An llm job's first call reserves at least its whole output allowance.
  const price = priceOf(agent.prices ?? BUNDLED_PRICES, agent.model);
  return Math.ceil(agent.maxOutputTokens * price.output);
}

/**
 * A worker process takes about this much memory when it runs (its resident size, as
 * `fanout bench` measures one: 120-141 MB on Node 20 with the TypeScript runner).
 */
const WORKER_MEMORY_BYTES = 150 * 1024 * 1024;

/** Refuses a fleet this machine's free memory cannot hold, before one process starts, rather than swap. */
function checkMemoryFor(workers: number): void {
  const free = freemem();
  const fits = Math.floor((free * 0.8) / WORKER_MEMORY_BYTES);
  if (workers <= fits) return;
  const gb = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  throw new FanoutError(
    'INVALID_INPUT',
    `--workers ${workers} needs about ${gb(workers * WORKER_MEMORY_BYTES)} (about 150 MB a worker process) and this ` +
      `machine has ${gb(free)} free: use --workers ${Math.max(1, fits)} or fewer`,
  );
}

const ISOLATION: Record<SandboxIsolation, string> = {
  full: 'full isolation: no network, its own processes and mounts, a user of its own; the state dir and your home hidden',
  network:
    'network isolation only: no network and its own processes, but it can read the files your user can',
  function:
    'a sandbox function: no credential or resource name reachable, a fresh folder per command; network not isolated',
  none: 'no isolation: an empty environment and limits only; it can read the files your user can, and reach the network',
};

/**
 * What the agent's commands will run in, said before the run starts; `--sandbox strict`
 * where the network cannot be isolated is refused here, before anything runs.
 */
async function describeSandbox(mode: 'none' | 'auto' | 'strict', stateDir: string): Promise<string> {
  const isolation = await new ProcessSandbox({ hide: [stateDir] }).isolation();
  if (mode !== 'none') refuseUnisolated(mode, isolation);
  return `Sandbox (--sandbox ${mode}): ${ISOLATION[isolation]}.`;
}
