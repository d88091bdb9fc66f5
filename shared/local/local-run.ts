import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dynamoState, ensureTable } from '../adapters/dynamo/index.js';
import { LEDGER_SHARDS } from '../adapters/dynamo/schema.js';
import { embeddedDynamoClient } from '../adapters/embedded-dynamo.js';
import { FolderWorkspaceStore } from '../adapters/folder-workspace.js';
import { LocalQueue } from '../adapters/local-queue.js';
import { planFor } from '../agents/simulate.js';
import { type AgentConfig, DEFAULT_AGENT } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';
import { type Issue, newRunId } from '../domain/job.js';
import { buildReport, deadLetterRows, type RunReport } from '../domain/report.js';
import { type SendSummary, sendIssues } from '../domain/send.js';
import type { StatePort } from '../ports/state.js';
import { type DispatchEvent, Dispatcher } from './dispatcher.js';
import { checkRunIntegrity, recordOutcome } from './integrity.js';
import {
  checkStateDir,
  LOCAL_TABLE,
  readCurrentRun,
  serveLive,
  startEngine,
  statePath,
  writeCurrentRun,
  writeJsonAtomic,
} from './state-dir.js';

export interface LocalRunOptions {
  readonly stateDir: string;
  readonly workers: number;
  readonly batchSize: number;
  /** Per invocation; also the queue's visibility timeout. */
  readonly timeoutMs: number;
  /** A job's lease, renewed by its worker's heartbeat. @default the shorter of 30 s and the timeout */
  readonly leaseMs?: number;
  readonly maxReceiveCount: number;
  readonly budgetMicros: number;
  /** --budget-usd was given: a resumed run with another budget is refused rather than keeping its own silently. */
  readonly budgetGiven?: boolean;
  readonly issues: readonly Issue[];
  /** The agent of a new run; for a resumed run, only when given anew (otherwise the run keeps its own). */
  readonly agent?: AgentConfig;
  readonly runId?: string;
  readonly onEvent?: (event: DispatchEvent | RunEvent) => void;
  /** Count each invocation's calls (for `fanout bench`). */
  readonly countCalls?: boolean;
  /** Handed the dispatcher once it runs, so a caller (Ctrl-C, a test) can stop it. */
  readonly onDispatcher?: (dispatcher: Dispatcher) => void;
}

export type RunEvent =
  | { readonly type: 'run'; readonly runId: string; readonly resumed: boolean; readonly send: SendSummary }
  | { readonly type: 'tick'; readonly state: StatePort; readonly queue: LocalQueue; readonly runId: string };

/**
 * The work this session did on the run's jobs, for efficiency: each job's agent time in
 * this session (for the simulate agent, the part of its plan it worked, so the control
 * plane around the work stays overhead). Skipped jobs did no work, and other runs' jobs
 * drained at the same time are not this run's: they are counted apart.
 */
function sessionWorkOf(dispatcher: Dispatcher, runId: string, agent: AgentConfig) {
  const sessionWorkMs: number[] = [];
  let otherRunsJobs = 0;
  for (const work of dispatcher.sessionWork.values()) {
    if (work.runId !== runId) {
      otherRunsJobs++;
      continue;
    }
    if (work.status === 'SKIPPED') continue;
    const planned = agent.kind === 'simulate' ? planFor(work.jobKey, agent).durationMs : work.workMs;
    sessionWorkMs.push(Math.min(planned, work.workMs));
  }
  return { sessionWorkMs, otherRunsJobs };
}

/**
 * One local run: the embedded DynamoDB engine and the persisted queue under the
 * state dir, N worker processes fed by the dispatcher, and a report at the end.
 * An unfinished run in the state dir is resumed, not replaced.
 */
export async function runLocal(options: LocalRunOptions): Promise<RunReport> {
  const started = Date.now();
  checkStateDir(options.stateDir);
  const engine = await startEngine(options.stateDir, 'run');
  const client = embeddedDynamoClient(engine.endpoint);
  let queue: LocalQueue;
  try {
    queue = LocalQueue.open(statePath(options.stateDir, 'queue'), {
      visibilityTimeoutMs: options.timeoutMs,
      maxReceiveCount: options.maxReceiveCount,
    });
  } catch (error) {
    // A damaged journal: nothing may run, and the engine must not keep the process alive.
    client.destroy();
    await engine.close();
    throw error;
  }
  let stopServing: (() => Promise<void>) | undefined;
  let logFd: number | undefined;
  let dispatcher: Dispatcher | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    await ensureTable(client, LOCAL_TABLE);
    const state = dynamoState({ tableName: LOCAL_TABLE, client });

    const previous = readCurrentRun(options.stateDir);
    const resumed =
      previous !== undefined && !previous.finished && (!options.runId || options.runId === previous.runId);
    const runId = resumed ? previous.runId : (options.runId ?? newRunId(new Date()));
    const agent = options.agent ?? (resumed ? previous.agent : DEFAULT_AGENT);
    const workspaces = new FolderWorkspaceStore(statePath(options.stateDir, 'workspaces'));
    // A run that goes on must find the state table and the queue in agreement: a lost or
    // damaged store is an error with its way out, never a fresh run with a default budget.
    if (resumed || (await state.getRun(runId)) !== undefined) {
      await checkRunIntegrity({
        stateDir: options.stateDir,
        runId,
        state,
        queue,
        ...(previous?.runId === runId && previous.budgetMicros !== undefined
          ? { recordedBudgetMicros: previous.budgetMicros }
          : {}),
      });
    }
    // The workers start while the issues are sent: a worker takes a few hundred ms of CPU to
    // load, and a large backlog's send several seconds of writes; neither waits for the other.
    const runDir = statePath(options.stateDir, 'runs', runId);
    mkdirSync(runDir, { recursive: true });
    logFd = openSync(statePath(runDir, 'workers.log'), 'a');
    const leaseMs = options.leaseMs ?? Math.min(30_000, options.timeoutMs);
    dispatcher = new Dispatcher({
      workers: options.workers,
      batchSize: options.batchSize,
      timeoutMs: options.timeoutMs,
      queue,
      engine: engine.handle,
      logFd,
      initFor: (workerId) => ({
        workerId,
        dynamoEndpoint: engine.endpoint,
        tableName: LOCAL_TABLE,
        workspaceRoot: statePath(options.stateDir, 'workspaces'),
        agent,
        leaseMs,
        heartbeatMs: Math.max(100, Math.floor(leaseMs / 3)),
        maxReceiveCount: options.maxReceiveCount,
        // Scaled to the local visibility timeout, as 30 s to 15 min is to Lambda's 90 minutes.
        retryDelay: {
          baseSeconds: Math.min(30, options.timeoutMs / 10_000),
          maxSeconds: Math.min(900, options.timeoutMs / 1000),
        },
        ...(options.countCalls ? { countCalls: true } : {}),
      }),
      onEvent: (event) => {
        if (event.type === 'worker' && event.event.type === 'finished') {
          recordOutcome(options.stateDir, runId, event.event.jobKey, event.event.status);
        }
        options.onEvent?.(event);
      },
    });
    options.onDispatcher?.(dispatcher);
    const starting = dispatcher.start();
    starting.catch(() => undefined); // awaited below, after the send
    const send = await sendIssues(
      options.issues,
      {
        runId,
        budgetMicros: options.budgetMicros,
        ...(options.budgetGiven ? { budgetGiven: true } : {}),
        // The engine here has no per-item limit: a shard per 16 workers spreads the writes
        // enough, and a small fleet does not pay for filling 32 shards with credit.
        ledgerShards: Math.min(LEDGER_SHARDS, Math.ceil(options.workers / 16)),
      },
      { state, queue, workspaces, clock: Date.now },
      { keepMessages: true },
    );
    writeCurrentRun(options.stateDir, { runId, agent, finished: false, budgetMicros: send.budgetMicros });
    if (send.failed.length > 0) {
      throw new FanoutError(
        'INVALID_INPUT',
        `${send.failed.length} issue(s) could not be queued: ${send.failed.map((f) => `${f.jobKey} (${f.code})`).join(', ')}`,
      );
    }
    options.onEvent?.({ type: 'run', runId, resumed, send });
    stopServing = await serveLive(options.stateDir, queue, engine.endpoint);

    await starting;
    const startupMs = Date.now() - started;
    ticker = setInterval(() => options.onEvent?.({ type: 'tick', state, queue, runId }), 500);
    await dispatcher.run();
    clearInterval(ticker);

    const run = await state.getRun(runId);
    if (!run) throw new FanoutError('STATE_UNAVAILABLE', `run ${runId} vanished from the state table`);
    const report = buildReport({
      run,
      jobs: await state.listJobs(runId),
      deadLetters: deadLetterRows(queue.deadLetters(), runId, started),
      workers: options.workers,
      wallMs: dispatcher.wallMs,
      startupMs,
      ...sessionWorkOf(dispatcher, runId, agent),
    });
    writeJsonAtomic(statePath(runDir, 'report.json'), report);
    writeCurrentRun(options.stateDir, {
      runId,
      agent,
      finished: report.complete && queue.isEmpty(),
      budgetMicros: run.budgetMicros,
    });
    return report;
  } finally {
    if (ticker) clearInterval(ticker);
    await stopServing?.();
    await dispatcher?.close();
    if (logFd !== undefined) closeSync(logFd);
    queue.close();
    client.destroy();
    await engine.close();
  }
}
