import type { AgentConfig } from '../agents/config.js';
import type { Agent, Logger } from '../ports/agent.js';
import type { BatchResponse, QueueControl, QueueRecord } from '../ports/queue.js';
import type { FinalStatus, JobOutcome, Lease, LeaseAnswer, StatePort } from '../ports/state.js';
import type { Workspace, WorkspaceStore } from '../ports/workspace.js';
import { type ErrorCode, FanoutError, toFanoutError } from './errors.js';
import { type JobMessage, JobMessageSchema, jobKey, jobPrefix } from './job.js';
import { LeaseKeeper } from './lease.js';
import { AttemptLedger, reclaimAbandoned } from './ledger.js';

export type WorkerEvent =
  | { readonly type: 'started'; readonly jobKey: string; readonly title: string; readonly attempt: number }
  | {
      readonly type: 'finished';
      readonly runId: string;
      readonly jobKey: string;
      readonly status: FinalStatus;
      readonly costMicros: number;
      /** The agent's time on the job, across all its invocations. */
      readonly durationMs: number;
      /** The agent's time in this invocation alone. */
      readonly attemptMs: number;
      readonly errorCode?: ErrorCode;
    }
  | {
      readonly type: 'returned';
      readonly jobKey: string;
      /** An error code, or lease-lost / cancelled. */
      readonly reason: string;
      /** What went wrong, in words, when an error gave the job back. */
      readonly message?: string;
    }
  | {
      readonly type: 'deferred';
      readonly jobKey: string;
      readonly reason: 'lease-held';
      /** When the holder's lease ends and the job may be taken (epoch ms). */
      readonly until: number;
    }
  | {
      readonly type: 'continued';
      readonly runId: string;
      readonly jobKey: string;
      readonly continuation: number;
      /** The agent's time in this invocation. */
      readonly attemptMs: number;
    }
  /**
   * What one attempt settled (or, `abandoned`, what a crashed attempt's open reservations
   * were charged), whatever became of the attempt: the sum over a run is every dollar spent.
   */
  | {
      readonly type: 'spent';
      readonly jobKey: string;
      readonly costMicros: number;
      readonly abandoned?: boolean;
    };

export interface WorkerDeps {
  readonly state: StatePort;
  readonly queue: QueueControl;
  readonly workspaces: WorkspaceStore;
  readonly agent: Agent;
  /** The agent for settings a message carries (chosen per run by `fanout send`). */
  readonly agentFor?: (config: AgentConfig) => Agent;
  readonly logger: Logger;
  readonly clock: () => number;
  /** The worker slot, e.g. worker-01. */
  readonly workerId: string;
  /** Unique per invocation, so two invocations of one slot never share a lease. */
  readonly owner: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly maxReceiveCount: number;
  /** Epoch ms at which this invocation is cut off (Lambda's remaining time, the local timeout). */
  readonly deadline: number;
  /** How long before the deadline the agent is asked to checkpoint. @default 10% of the time left, 1-30 s */
  readonly checkpointMarginMs?: number;
  /** A job running longer than this in all, across continuations, fails with RUN_TIME_EXCEEDED. @default 6 h */
  readonly maxRunTimeMs?: number;
  /** Aborted when the run is stopping and running jobs go back to the queue. */
  readonly signal?: AbortSignal;
  /** Runs before each job, e.g. emptying Lambda's reused /tmp (pitfall 8). */
  readonly beforeJob?: () => Promise<void>;
  /**
   * Seconds a record that failed with a retryable error stays hidden before its next
   * delivery, by its receive count. @default retryDelaySeconds: 30 s doubling to 15 min, jittered
   */
  readonly retryDelay?: (receiveCount: number) => number;
  readonly onEvent?: (event: WorkerEvent) => void;
}

/**
 * What became of one record: acknowledged (deleted), left for the queue to deliver
 * again, or rejected (a poison message, already moved to the dead-letter queue).
 */
export type RecordResult =
  | {
      readonly kind: 'ack';
      readonly reason: 'finished' | 'already-finished' | 'continued';
      readonly status?: FinalStatus;
    }
  | { readonly kind: 'retry'; readonly reason: 'lease-held' | 'retryable-error' | 'lease-lost' | 'cancelled' }
  | { readonly kind: 'rejected'; readonly reason: 'poison' };

/**
 * The wait before a retryable failure's next delivery: `baseSeconds` doubling per
 * receive up to `maxSeconds`, with full jitter on its upper half so that jobs that failed
 * together do not come back together. Without it the record would wait out the queue's
 * whole visibility timeout (90 minutes on AWS by default).
 */
export function retryDelaySeconds(
  receiveCount: number,
  options: { baseSeconds?: number; maxSeconds?: number; random?: () => number } = {},
): number {
  const base = options.baseSeconds ?? 30;
  const max = options.maxSeconds ?? 900;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, receiveCount - 1));
  return Math.max(0, Math.round(ceiling * (0.5 + (options.random ?? Math.random)() / 2)));
}

export function parseJobMessage(
  body: string,
): { ok: true; message: JobMessage } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
  const parsed = JobMessageSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      ok: false,
      reason: `body is not a job message: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
    };
  }
  return { ok: true, message: parsed.data };
}

/** The life of a job (DESIGN.md): lease, budget, work with a heartbeat, outcome, release. */
export async function processRecord(record: QueueRecord, deps: WorkerDeps): Promise<RecordResult> {
  const parsed = parseJobMessage(record.body);
  if (!parsed.ok) {
    // A poison message fails alone and at once, with its reason (invariant 5).
    deps.logger.warn('poison message sent to the dead-letter queue', {
      messageId: record.messageId,
      reason: parsed.reason,
    });
    await deps.queue.deadLetter(record, { code: 'INVALID_MESSAGE', message: parsed.reason });
    return { kind: 'rejected', reason: 'poison' };
  }
  const message = parsed.message;
  const key = jobKey(message.issue);
  const { state, clock } = deps;

  // The agent's first worst case is reserved while the lease is taken (design step 4).
  const ledger = new AttemptLedger(state, { runId: message.runId, jobKey: key, owner: deps.owner }, clock);
  const agent = message.agent && deps.agentFor ? deps.agentFor(message.agent) : deps.agent;
  const early = agent.firstReservationMicros?.(message);
  if (early !== undefined) ledger.reserveEarly(early);
  let answer: LeaseAnswer;
  const acquiredAt = performance.now();
  try {
    answer = await state.acquireLease(
      message.runId,
      key,
      { owner: deps.owner, worker: deps.workerId },
      clock(),
      deps.leaseMs,
    );
  } catch (error) {
    // No lease, so nothing may be spent: give the early reservation back before failing.
    await ledger.releaseUnused().catch(() => undefined);
    throw error;
  }
  if (answer.kind !== 'acquired') await ledger.releaseUnused();
  if (answer.kind === 'finished') {
    deps.logger.info('job already finished; delivery acknowledged', { jobKey: key, status: answer.status });
    return { kind: 'ack', reason: 'already-finished', status: answer.status };
  }
  if (answer.kind === 'held') {
    // Another worker holds the job: come back when its lease would have expired.
    const seconds = Math.max(1, Math.ceil((answer.until - clock()) / 1000));
    deps.logger.info('job is leased by another worker; deferred', {
      jobKey: key,
      owner: answer.owner,
      seconds,
    });
    await deps.queue.changeVisibility(record, seconds);
    deps.onEvent?.({ type: 'deferred', jobKey: key, reason: 'lease-held', until: clock() + seconds * 1000 });
    return { kind: 'retry', reason: 'lease-held' };
  }

  const lease: Lease = { runId: message.runId, jobKey: key, owner: deps.owner, fence: answer.fence };
  // An earlier attempt (or an earlier delivery that died after reserving, before its lease)
  // may have left a reservation open: close it before this attempt spends.
  if (answer.attempts > 1 || record.receiveCount > 1) {
    const abandoned = await reclaimAbandoned(state, lease, clock(), deps.leaseMs / 2, deps.logger);
    if (abandoned > 0) deps.onEvent?.({ type: 'spent', jobKey: key, costMicros: abandoned, abandoned: true });
  }
  deps.onEvent?.({ type: 'started', jobKey: key, title: message.issue.title, attempt: answer.attempts });

  const maxRunTimeMs = deps.maxRunTimeMs ?? 6 * 3600_000;
  const ranMs = clock() - answer.firstStartedAt;
  const attempt: Attempt =
    ranMs > maxRunTimeMs
      ? {
          durationMs: 0,
          costMicros: ledger.closeAttempt(),
          ledger,
          continued: false,
          error: new FanoutError(
            'RUN_TIME_EXCEEDED',
            `the job has run for ${Math.round(ranMs / 1000)}s across its invocations, over its limit of ${Math.round(maxRunTimeMs / 1000)}s`,
          ),
        }
      : await (async () => {
          await deps.beforeJob?.();
          return runAgent(
            message,
            agent,
            new LeaseKeeper(lease, state, clock, deps.leaseMs, acquiredAt),
            ledger,
            deps,
          );
        })();
  // Every attempt's spend is reported, whatever becomes of it, so metrics miss no dollar.
  if (attempt.costMicros > 0) deps.onEvent?.({ type: 'spent', jobKey: key, costMicros: attempt.costMicros });
  // An invocation asked to checkpoint before it could work hands on nothing: a few in a
  // row mean the invocation's time leaves none for the job, and it fails rather than loop.
  const stalls = attempt.continued && attempt.durationMs < STALL_MS ? (message.stalls ?? 0) + 1 : 0;
  const error =
    stalls >= MAX_STALLS
      ? new FanoutError(
          'NO_PROGRESS',
          `the job was asked to checkpoint ${stalls} times in a row before it could work: each invocation's ` +
            'time is used up by the checkpoint margin (10% of it, at least 1 s); give invocations more time',
        )
      : attempt.error;

  if (attempt.continued && !error) {
    // Handed on, not failed: the lease goes back, a new message resumes from the checkpoint
    // (a new message, so it does not count toward maxReceiveCount), and this one is done.
    const continuation = (message.continuation ?? 0) + 1;
    await Promise.all([attempt.ledger.flushed(), state.releaseLease(lease, undefined, attempt.costMicros)]);
    const workedMs = (message.workedMs ?? 0) + attempt.durationMs;
    const { stalls: _, ...carried } = message;
    const sent = await deps.queue.send([
      {
        id: key,
        body: JSON.stringify({ ...carried, continuation, workedMs, ...(stalls > 0 ? { stalls } : {}) }),
      },
    ]);
    if (sent.failed.length > 0) {
      // The current message comes back after its visibility timeout and resumes instead.
      deps.logger.warn('continuation not sent; the job resumes from its redelivery', { jobKey: key });
      return { kind: 'retry', reason: 'retryable-error' };
    }
    deps.logger.info('job checkpointed and handed on', { jobKey: key, continuation });
    deps.onEvent?.({
      type: 'continued',
      runId: message.runId,
      jobKey: key,
      continuation,
      attemptMs: attempt.durationMs,
    });
    return { kind: 'ack', reason: 'continued' };
  }

  if (error?.code === 'LEASE_LOST' || (error && deps.signal?.aborted && error.code === 'CANCELLED')) {
    const reason = error.code === 'LEASE_LOST' ? 'lease-lost' : 'cancelled';
    await attempt.ledger.flushed();
    if (reason === 'cancelled') {
      await state.releaseLease(lease, undefined, attempt.costMicros);
      await deps.queue.changeVisibility(record, 0);
    } else {
      const confirmed = await attempt.ledger.confirmedMicros();
      if (confirmed > 0) await state.recordAttemptCost(lease, confirmed);
    }
    deps.onEvent?.({ type: 'returned', jobKey: key, reason });
    return { kind: 'retry', reason };
  }

  if (error?.retryable && record.receiveCount < deps.maxReceiveCount) {
    deps.logger.warn('job failed with a retryable error; the queue will deliver it again', {
      jobKey: key,
      code: error.code,
      receiveCount: record.receiveCount,
    });
    await Promise.all([
      attempt.ledger.flushed(),
      state.releaseLease(lease, { code: error.code, message: error.message }, attempt.costMicros),
    ]);
    await deps.queue.changeVisibility(record, retryDelayFor(record, deps));
    deps.onEvent?.({ type: 'returned', jobKey: key, reason: error.code, message: error.message });
    return { kind: 'retry', reason: 'retryable-error' };
  }

  const outcome: JobOutcome = {
    status: !error ? 'DONE' : error.code === 'BUDGET_EXHAUSTED' ? 'SKIPPED' : 'FAILED',
    worker: deps.workerId,
    // Across all the job's invocations.
    durationMs: (message.workedMs ?? 0) + attempt.durationMs,
    costMicros: attempt.costMicros,
    ...(error ? { errorCode: error.code, errorMessage: error.message } : {}),
  };
  const [recorded] = await Promise.all([state.finishJob(lease, outcome, clock()), attempt.ledger.flushed()]);
  if (recorded === 'lost') {
    const confirmed = await attempt.ledger.confirmedMicros();
    if (confirmed > 0) await state.recordAttemptCost(lease, confirmed);
    deps.logger.warn('lease lost before the outcome was recorded; the holder decides', { jobKey: key });
    deps.onEvent?.({ type: 'returned', jobKey: key, reason: 'lease-lost' });
    return { kind: 'retry', reason: 'lease-lost' };
  }
  if (outcome.status === 'FAILED' && error) {
    // A failed job ends in the dead-letter queue with its reason, ready for a redrive.
    await deps.queue.deadLetter(record, { code: error.code, message: error.message });
  }
  deps.logger.info('job finished', { jobKey: key, status: outcome.status, costMicros: outcome.costMicros });
  deps.onEvent?.({
    type: 'finished',
    runId: message.runId,
    jobKey: key,
    status: outcome.status,
    costMicros: outcome.costMicros,
    durationMs: outcome.durationMs,
    attemptMs: attempt.durationMs,
    ...(outcome.errorCode ? { errorCode: outcome.errorCode } : {}),
  });
  return { kind: 'ack', reason: 'finished', status: outcome.status };
}

/** An invocation that worked less than this before it checkpointed made no progress. */
const STALL_MS = 100;
const MAX_STALLS = 3;

const retryDelayFor = (record: QueueRecord, deps: WorkerDeps): number =>
  (deps.retryDelay ?? retryDelaySeconds)(record.receiveCount);

interface Attempt {
  readonly durationMs: number;
  readonly costMicros: number;
  /** The agent checkpointed before the deadline; the job continues in a new invocation. */
  readonly continued: boolean;
  /** Its settlements are written while the outcome is: await `ledger.flushed()` with it. */
  readonly ledger: AttemptLedger;
  readonly error?: FanoutError;
}

/** The message with its whole issue body: a body too large for the queue waits in the workspace. */
async function withBody(message: JobMessage, workspace: Workspace): Promise<JobMessage> {
  if (!message.bodyRef) return message;
  const bytes = await workspace.read(message.bodyRef);
  if (bytes === undefined) {
    throw new FanoutError(
      'INVALID_MESSAGE',
      `the issue body ${message.bodyRef} is missing from ${workspace.location}`,
    );
  }
  return { ...message, issue: { ...message.issue, body: Buffer.from(bytes).toString('utf8') } };
}

/** Runs the agent under a heartbeat that renews the lease, with spend going through the ledger. */
async function runAgent(
  message: JobMessage,
  agent: Agent,
  keeper: LeaseKeeper,
  ledger: AttemptLedger,
  deps: WorkerDeps,
): Promise<Attempt> {
  const { clock } = deps;
  const controller = new AbortController();
  const onStop = () =>
    controller.abort(new FanoutError('CANCELLED', 'the run is stopping', { retryable: true }));
  deps.signal?.addEventListener('abort', onStop, { once: true });
  if (deps.signal?.aborted) onStop();

  keeper.startHeartbeat(
    deps.heartbeatMs,
    () =>
      controller.abort(
        new FanoutError('LEASE_LOST', `lease on ${keeper.lease.jobKey} was taken over`, { retryable: true }),
      ),
    deps.logger,
  );

  // Ask the agent to checkpoint while there is still time to save and hand on (design step 7).
  const left = deps.deadline - clock();
  const margin = deps.checkpointMarginMs ?? Math.min(30_000, Math.max(1000, left / 10));
  const deadlineTimer = setTimeout(
    () => controller.abort(new FanoutError('DEADLINE', 'the invocation is ending', { retryable: true })),
    Math.max(0, left - margin),
  );

  ledger.stopWaitingOn(controller.signal);
  const started = clock();
  let error: FanoutError | undefined;
  let continued = false;
  try {
    const workspace = fencedWorkspace(deps.workspaces.open(jobPrefix(message.runId, message.issue)), keeper);
    const result = await agent.run(await withBody(message, workspace), workspace, {
      deadline: deps.deadline,
      signal: controller.signal,
      continuation: message.continuation ?? 0,
      spend: ledger,
      logger: deps.logger,
    });
    continued = result.continue === true;
  } catch (thrown) {
    error = toFanoutError(controller.signal.aborted ? (controller.signal.reason ?? thrown) : thrown);
  } finally {
    keeper.stopHeartbeat();
    clearTimeout(deadlineTimer);
    deps.signal?.removeEventListener('abort', onStop);
  }
  const durationMs = clock() - started;
  return { durationMs, costMicros: ledger.closeAttempt(), ledger, continued, ...(error ? { error } : {}) };
}

/**
 * The job's workspace for one attempt: every write and removal first proves the lease
 * is still this attempt's, so a worker that lost it, even one that was paused and does
 * not know yet, cannot change the files (invariant 3).
 */
function fencedWorkspace(inner: Workspace, keeper: LeaseKeeper): Workspace {
  return {
    prefix: inner.prefix,
    location: inner.location,
    read: (path) => inner.read(path),
    list: () => inner.list(),
    write: async (path, data) => {
      await keeper.prove();
      await inner.write(path, data);
    },
    remove: async (path) => {
      await keeper.prove();
      await inner.remove(path);
    },
  };
}

/**
 * Handles a batch the way the SQS event source expects: every record on its own,
 * and only the records that must come back reported as failures (invariant 5).
 */
export async function processBatch(
  records: readonly QueueRecord[],
  deps: WorkerDeps,
): Promise<BatchResponse> {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of records) {
    let result: RecordResult;
    try {
      result = await processRecord(record, deps);
    } catch (error) {
      deps.logger.error('record failed; the queue will deliver it again', {
        messageId: record.messageId,
        error: String(error),
      });
      // Back off rather than wait out the visibility timeout; if even that fails, the timeout stands.
      await deps.queue.changeVisibility(record, retryDelayFor(record, deps)).catch(() => undefined);
      result = { kind: 'retry', reason: 'retryable-error' };
    }
    // A rejected record is already in the dead-letter queue; reporting it failed changes
    // nothing on the queue, and it shows as a failure in the function's metrics.
    if (result.kind !== 'ack') batchItemFailures.push({ itemIdentifier: record.messageId });
  }
  return { batchItemFailures };
}
