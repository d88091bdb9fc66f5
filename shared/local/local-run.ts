import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoState, ensureTable } from '../adapters/dynamo-state.js';
import { embeddedDynamoClient, startEmbeddedDynamo } from '../adapters/embedded-dynamo.js';
import { LocalQueue } from '../adapters/local-queue.js';
import type { AgentConfig } from '../agents/index.js';
import { planFor } from '../agents/simulate.js';
import { FanoutError } from '../domain/errors.js';
import { type Issue, type JobMessage, jobKey, newRunId } from '../domain/job.js';
import { buildReport, type DeadLetterRow, type RunReport } from '../domain/report.js';
import { parseJobMessage } from '../domain/worker.js';
import type { StatePort } from '../ports/state.js';
import { type DispatchEvent, Dispatcher } from './dispatcher.js';

export const LOCAL_TABLE = 'fanout-state';

export interface LocalRunOptions {
  readonly stateDir: string;
  readonly workers: number;
  readonly batchSize: number;
  /** Per invocation; also the queue's visibility timeout. */
  readonly timeoutMs: number;
  readonly maxReceiveCount: number;
  readonly budgetMicros: number;
  readonly issues: readonly Issue[];
  readonly agent: AgentConfig;
  readonly runId?: string;
  readonly onEvent?: (event: DispatchEvent | RunEvent) => void;
  /** Handed the dispatcher once it runs, so a caller (Ctrl-C, a test) can stop it. */
  readonly onDispatcher?: (dispatcher: Dispatcher) => void;
}

export type RunEvent =
  | {
      readonly type: 'run';
      readonly runId: string;
      readonly resumed: boolean;
      readonly sent: number;
      readonly duplicates: number;
    }
  | { readonly type: 'tick'; readonly state: StatePort; readonly queue: LocalQueue; readonly runId: string };

interface CurrentRun {
  readonly runId: string;
  readonly agent: AgentConfig;
  readonly finished: boolean;
}

/** Fails fast, before anything is written, when the state dir cannot hold a run. */
export function checkStateDir(stateDir: string): void {
  try {
    mkdirSync(stateDir, { recursive: true });
    const probe = join(stateDir, `.write-test-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
  } catch (error) {
    throw new FanoutError(
      'STATE_DIR_NOT_WRITABLE',
      `state dir "${stateDir}" is not writable (${(error as NodeJS.ErrnoException).code ?? error}); ` +
        'choose another with --state-dir or fix its permissions',
      { cause: error },
    );
  }
}

function readCurrentRun(stateDir: string): CurrentRun | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'current-run.json'), 'utf8')) as CurrentRun;
  } catch {
    return undefined;
  }
}

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

/** Registers each issue as a job and sends a message for each new one; duplicates send nothing. */
export async function enqueueJobs(
  state: StatePort,
  queue: LocalQueue,
  runId: string,
  issues: readonly Issue[],
  now: number,
): Promise<{ sent: number; duplicates: number }> {
  let sent = 0;
  let duplicates = 0;
  for (const issue of issues) {
    const key = jobKey(issue);
    const registered = await state.registerJob({ runId, jobKey: key, title: issue.title, enqueuedAt: now });
    if (registered === 'exists') {
      duplicates++;
      continue;
    }
    const message: JobMessage = { v: 1, runId, issue, sentAt: now };
    await queue.send([{ id: key, body: JSON.stringify(message) }]);
    sent++;
  }
  if (sent > 0) await state.addJobCount(runId, sent);
  return { sent, duplicates };
}

/**
 * A job registered but whose message never reached the queue (the process stopped
 * between the two writes) is sent again, so nothing sent is ever lost.
 */
async function requeueMissing(state: StatePort, queue: LocalQueue, runId: string, issues: readonly Issue[]) {
  const onQueue = new Set<string>();
  for (const body of [...queue.pendingBodies(), ...queue.deadLetters().map((d) => d.body)]) {
    const parsed = parseJobMessage(body);
    if (parsed.ok && parsed.message.runId === runId) onQueue.add(jobKey(parsed.message.issue));
  }
  const byKey = new Map(issues.map((issue) => [jobKey(issue), issue]));
  const now = Date.now();
  let requeued = 0;
  for (const job of await state.listJobs(runId)) {
    if ((job.status !== 'PENDING' && job.status !== 'RUNNING') || onQueue.has(job.jobKey)) continue;
    const issue = byKey.get(job.jobKey);
    if (!issue) continue;
    await queue.send([
      { id: job.jobKey, body: JSON.stringify({ v: 1, runId, issue, sentAt: now } satisfies JobMessage) },
    ]);
    requeued++;
  }
  return requeued;
}

function deadLetterRows(queue: LocalQueue, runId: string, since: number): DeadLetterRow[] {
  const rows: DeadLetterRow[] = [];
  for (const letter of queue.deadLetters()) {
    const parsed = parseJobMessage(letter.body);
    const ours = parsed.ok ? parsed.message.runId === runId : letter.at >= since;
    if (!ours) continue;
    rows.push({
      messageId: letter.id,
      ...(parsed.ok ? { jobKey: jobKey(parsed.message.issue) } : {}),
      code: letter.code,
      reason: letter.reason,
    });
  }
  return rows;
}

/**
 * One local run: the embedded DynamoDB engine and the persisted queue under the
 * state dir, N worker processes fed by the dispatcher, and a report at the end.
 * An unfinished run in the state dir is resumed, not replaced.
 */
export async function runLocal(options: LocalRunOptions): Promise<RunReport> {
  const started = Date.now();
  checkStateDir(options.stateDir);
  const dynamoDir = join(options.stateDir, 'dynamodb');
  mkdirSync(dynamoDir, { recursive: true });
  const engine = await startEmbeddedDynamo(dynamoDir).catch((error: unknown) => {
    throw new FanoutError(
      'STATE_UNAVAILABLE',
      `cannot open the state in "${dynamoDir}": ${(error as Error).message}. Is another fanout run using this state dir?`,
      { cause: error },
    );
  });
  const client = embeddedDynamoClient(engine.endpoint);
  const queue = LocalQueue.open(join(options.stateDir, 'queue'), {
    visibilityTimeoutMs: options.timeoutMs,
    maxReceiveCount: options.maxReceiveCount,
  });
  let logFd: number | undefined;
  let dispatcher: Dispatcher | undefined;
  let ticker: NodeJS.Timeout | undefined;
  try {
    await ensureTable(client, LOCAL_TABLE);
    const state = new DynamoState({ tableName: LOCAL_TABLE, client });

    const previous = readCurrentRun(options.stateDir);
    const resumed =
      previous !== undefined && !previous.finished && (!options.runId || options.runId === previous.runId);
    const runId = resumed ? previous.runId : (options.runId ?? newRunId(new Date()));
    const agent = resumed ? previous.agent : options.agent;
    await state.createRun({ runId, budgetMicros: options.budgetMicros, createdAt: started });
    writeJsonAtomic(join(options.stateDir, 'current-run.json'), {
      runId,
      agent,
      finished: false,
    } satisfies CurrentRun);

    const { sent, duplicates } = await enqueueJobs(state, queue, runId, options.issues, started);
    await requeueMissing(state, queue, runId, options.issues);
    options.onEvent?.({ type: 'run', runId, resumed, sent, duplicates });

    const runDir = join(options.stateDir, 'runs', runId);
    mkdirSync(runDir, { recursive: true });
    logFd = openSync(join(runDir, 'workers.log'), 'a');
    const leaseMs = Math.min(30_000, options.timeoutMs);
    dispatcher = new Dispatcher({
      workers: options.workers,
      batchSize: options.batchSize,
      timeoutMs: options.timeoutMs,
      queue,
      logFd,
      initFor: (workerId) => ({
        workerId,
        dynamoEndpoint: engine.endpoint,
        tableName: LOCAL_TABLE,
        workspaceRoot: join(options.stateDir, 'workspaces'),
        agent,
        leaseMs,
        heartbeatMs: Math.max(100, Math.floor(leaseMs / 3)),
        maxReceiveCount: options.maxReceiveCount,
      }),
      onEvent: (event) => options.onEvent?.(event),
    });
    options.onDispatcher?.(dispatcher);
    await dispatcher.start();
    const startupMs = Date.now() - started;
    ticker = setInterval(() => options.onEvent?.({ type: 'tick', state, queue, runId }), 500);
    await dispatcher.run();
    clearInterval(ticker);

    const run = await state.getRun(runId);
    if (!run) throw new FanoutError('STATE_UNAVAILABLE', `run ${runId} vanished from the state table`);
    const report = buildReport({
      run,
      jobs: await state.listJobs(runId),
      deadLetters: deadLetterRows(queue, runId, started),
      workers: options.workers,
      wallMs: dispatcher.wallMs,
      startupMs,
      // The simulate agent's work time is its plan; the control plane's time around it is overhead.
      sessionWorkMs: dispatcher.sessionJobs.map((job) =>
        agent.kind === 'simulate' ? planFor(job.jobKey, agent).durationMs : job.durationMs,
      ),
    });
    writeJsonAtomic(join(runDir, 'report.json'), report);
    writeJsonAtomic(join(options.stateDir, 'current-run.json'), {
      runId,
      agent,
      finished: report.complete && queue.isEmpty(),
    } satisfies CurrentRun);
    return report;
  } finally {
    if (ticker) clearInterval(ticker);
    await dispatcher?.close();
    if (logFd !== undefined) closeSync(logFd);
    queue.close();
    client.destroy();
    await engine.close();
  }
}
