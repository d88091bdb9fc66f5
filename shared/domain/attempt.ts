import type { Agent, Verdict } from '../ports/agent.js';
import type { QueueRecord } from '../ports/queue.js';
import type { JobOutcome, Lease } from '../ports/state.js';
import type { Workspace } from '../ports/workspace.js';
import { MAX_RUN_TIME_MS } from './agent-settings.js';
import { FanoutError, toFanoutError } from './errors.js';
import { type JobMessage, jobKey, jobPrefix, queueEntry } from './job.js';
import { LeaseKeeper } from './lease.js';
import { AttemptLedger, reclaimAbandoned, repoLedgerId } from './ledger.js';
import type { RecordResult, WorkerDeps } from './worker-deps.js';

/** What one attempt's work came to, before anything is decided. */
export interface Work {
  /** The agent's time in this invocation. */
  readonly durationMs: number;
  readonly costMicros: number;
  /** The agent checkpointed before the deadline; the job continues in a new invocation. */
  readonly continued: boolean;
  readonly error?: FanoutError;
  readonly verdict?: Verdict;
  readonly verification?: string;
}

/** What becomes of the job after one attempt: decided once, applied once. */
export type Decision =
  /** Handed on from its checkpoint in a new message; the lease goes back. */
  | {
      readonly kind: 'continue';
      readonly continuation: number;
      readonly workedMs: number;
      readonly stalls: number;
    }
  /** The job is someone else's (lease lost) or the run is stopping (cancelled): give it back as it is. */
  | { readonly kind: 'give-back'; readonly reason: 'lease-lost' | 'cancelled' }
  /** A retryable error with deliveries left: the queue delivers it again after a backoff. */
  | { readonly kind: 'retry'; readonly error: FanoutError }
  /** DONE, FAILED or SKIPPED, for good. */
  | { readonly kind: 'finish'; readonly outcome: JobOutcome; readonly error?: FanoutError };

/** An invocation that worked less than this before it checkpointed made no progress. */
const STALL_MS = 100;
const MAX_STALLS = 3;

/**
 * What becomes of the job, from its work alone: no I/O, so every branch of a job's
 * lifecycle is a plain function of what happened.
 */
export function decide(
  work: Work,
  context: {
    readonly message: JobMessage;
    readonly receiveCount: number;
    readonly maxReceiveCount: number;
    /** The run is stopping: a CANCELLED job goes back rather than fails. */
    readonly stopping: boolean;
    readonly workerId: string;
    /** What the job's spend counts under (the agent's model or name). */
    readonly model?: string;
  },
): Decision {
  const { message } = context;
  // An invocation asked to checkpoint before it could work hands on nothing: a few in a
  // row mean the invocation's time leaves none for the job, and it fails rather than loop.
  const stalls = work.continued && work.durationMs < STALL_MS ? (message.stalls ?? 0) + 1 : 0;
  const error =
    stalls >= MAX_STALLS
      ? new FanoutError(
          'NO_PROGRESS',
          `the job was asked to checkpoint ${stalls} times in a row before it could work: each invocation's ` +
            'time is used up by the checkpoint margin (10% of it, at least 1 s); give invocations more time',
        )
      : work.error;
  if (work.continued && !error) {
    return {
      kind: 'continue',
      continuation: (message.continuation ?? 0) + 1,
      workedMs: (message.workedMs ?? 0) + work.durationMs,
      stalls,
    };
  }
  if (error?.code === 'LEASE_LOST') return { kind: 'give-back', reason: 'lease-lost' };
  if (error?.code === 'CANCELLED' && context.stopping) return { kind: 'give-back', reason: 'cancelled' };
  if (error?.retryable && context.receiveCount < context.maxReceiveCount) return { kind: 'retry', error };
  return {
    kind: 'finish',
    outcome: {
      status: !error ? 'DONE' : error.code === 'BUDGET_EXHAUSTED' ? 'SKIPPED' : 'FAILED',
      worker: context.workerId,
      // Across all the job's invocations.
      durationMs: (message.workedMs ?? 0) + work.durationMs,
      costMicros: work.costMicros,
      ...(error ? { errorCode: error.code, errorMessage: error.message } : {}),
      ...(!error && work.verdict ? { verdict: work.verdict } : {}),
      ...(!error && work.verification ? { verification: work.verification } : {}),
      ...(context.model ? { model: context.model } : {}),
      invocations: (message.continuation ?? 0) + 1,
    },
    ...(error ? { error } : {}),
  };
}

/**
 * One attempt at one job: its lease (with the fencing token), its ledger of reservations
 * and its fenced workspace, from taking the job to applying what became of it.
 */
export class Attempt {
  private constructor(
    private readonly record: QueueRecord,
    private readonly message: JobMessage,
    private readonly deps: WorkerDeps,
    readonly lease: Lease,
    private readonly ledger: AttemptLedger,
    private readonly keeper: LeaseKeeper,
    private readonly firstStartedAt: number,
  ) {}

  /**
   * Takes the job's lease. The agent's first worst case is reserved while the lease is
   * taken; it is given back unless the lease is this attempt's. Another holder's answer
   * (held, or finished) comes back as it is.
   */
  static async begin(
    record: QueueRecord,
    message: JobMessage,
    agent: Agent,
    deps: WorkerDeps,
  ): Promise<
    | { readonly kind: 'acquired'; readonly attempt: Attempt }
    | { readonly kind: 'held'; readonly until: number; readonly owner: string }
    | { readonly kind: 'finished'; readonly status: JobOutcome['status'] }
  > {
    const { state, clock } = deps;
    const key = jobKey(message.issue);
    const repoLedger =
      message.repoBudgetMicros !== undefined ? repoLedgerId(message.runId, message.issue.repo) : undefined;
    const ledger = new AttemptLedger(
      state,
      { runId: message.runId, jobKey: key, owner: deps.owner, ...(repoLedger ? { repoLedger } : {}) },
      clock,
    );
    const early = agent.firstReservationMicros?.(message);
    if (early !== undefined) ledger.reserveEarly(early);
    const acquiredAt = performance.now();
    const answer = await state
      .acquireLease(message.runId, key, { owner: deps.owner, worker: deps.workerId }, clock(), deps.leaseMs)
      .catch(async (error: unknown) => {
        // No lease, so nothing may be spent: give the early reservation back before failing.
        await ledger.releaseUnused().catch(() => undefined);
        throw error;
      });
    if (answer.kind !== 'acquired') {
      await ledger.releaseUnused();
      return answer;
    }
    const lease: Lease = { runId: message.runId, jobKey: key, owner: deps.owner, fence: answer.fence };
    // An earlier attempt (or an earlier delivery that died after reserving, before its lease)
    // may have left a reservation open: close it before this attempt spends.
    if (answer.attempts > 1 || record.receiveCount > 1) {
      const holder = { ...lease, ...(repoLedger ? { repoLedger } : {}) };
      const abandoned = await reclaimAbandoned(state, holder, clock(), deps.leaseMs / 2, deps.logger);
      if (abandoned > 0)
        deps.onEvent?.({ type: 'spent', jobKey: key, costMicros: abandoned, abandoned: true });
    }
    deps.onEvent?.({ type: 'started', jobKey: key, title: message.issue.title, attempt: answer.attempts });
    const keeper = new LeaseKeeper(lease, state, clock, deps.leaseMs, acquiredAt);
    return {
      kind: 'acquired',
      attempt: new Attempt(record, message, deps, lease, ledger, keeper, answer.firstStartedAt),
    };
  }

  /** Runs the agent under a heartbeat that renews the lease, with spend going through the ledger. */
  async work(agent: Agent): Promise<Work> {
    const { deps } = this;
    const maxRunTimeMs = deps.maxRunTimeMs ?? MAX_RUN_TIME_MS;
    const ranMs = deps.clock() - this.firstStartedAt;
    let work: Work;
    if (ranMs > maxRunTimeMs) {
      work = {
        durationMs: 0,
        costMicros: this.ledger.closeAttempt(),
        continued: false,
        error: new FanoutError(
          'RUN_TIME_EXCEEDED',
          `the job has run for ${Math.round(ranMs / 1000)}s across its invocations, over its limit of ${Math.round(maxRunTimeMs / 1000)}s`,
        ),
      };
    } else {
      await deps.beforeJob?.();
      work = await this.runAgent(agent);
    }
    // Every attempt's spend is reported, whatever becomes of it, so metrics miss no dollar.
    if (work.costMicros > 0) {
      deps.onEvent?.({ type: 'spent', jobKey: this.lease.jobKey, costMicros: work.costMicros });
    }
    return work;
  }

  private async runAgent(agent: Agent): Promise<Work> {
    const { deps, message, keeper, ledger } = this;
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
          new FanoutError('LEASE_LOST', `lease on ${keeper.lease.jobKey} was taken over`, {
            retryable: true,
          }),
        ),
      deps.logger,
    );

    // Ask the agent to checkpoint while there is still time to save and hand on.
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
    let verdict: Verdict | undefined;
    let verification: string | undefined;
    try {
      const workspace = fencedWorkspace(
        deps.workspaces.open(jobPrefix(message.runId, message.issue)),
        keeper,
      );
      const result = await agent.run(await withBody(message, workspace), workspace, {
        deadline: deps.deadline,
        signal: controller.signal,
        continuation: message.continuation ?? 0,
        spend: ledger,
        logger: deps.logger,
      });
      continued = result.continue === true;
      verdict = result.verdict;
      verification = result.verification;
    } catch (thrown) {
      error = toFanoutError(controller.signal.aborted ? (controller.signal.reason ?? thrown) : thrown);
    } finally {
      keeper.stopHeartbeat();
      clearTimeout(deadlineTimer);
      deps.signal?.removeEventListener('abort', onStop);
    }
    const durationMs = clock() - started;
    return {
      durationMs,
      costMicros: ledger.closeAttempt(),
      continued,
      ...(error ? { error } : {}),
      ...(verdict ? { verdict } : {}),
      ...(verification ? { verification } : {}),
    };
  }

  /**
   * Applies the decision: the lease, the ledger's settlements and the queue, in one place.
   * Every branch waits for the attempt's settlements, so its spend is on the ledger before
   * the record is acknowledged or handed back.
   */
  async end(decision: Decision, work: Work): Promise<RecordResult> {
    const { deps, lease, record, message, ledger } = this;
    const { state, queue, logger } = deps;
    const key = lease.jobKey;
    switch (decision.kind) {
      case 'continue': {
        // Handed on, not failed: a new message resumes from the checkpoint (a new message,
        // so it does not count toward maxReceiveCount), and this one is done.
        await Promise.all([ledger.flushed(), state.releaseLease(lease, undefined, work.costMicros)]);
        const { stalls: _, ...carried } = message;
        const { continuation, workedMs, stalls } = decision;
        const sent = await queue.send([
          queueEntry({ ...carried, continuation, workedMs, ...(stalls > 0 ? { stalls } : {}) }),
        ]);
        if (sent.failed.length > 0) {
          // The current message comes back after its visibility timeout and resumes instead.
          logger.warn('continuation not sent; the job resumes from its redelivery', { jobKey: key });
          return { kind: 'retry', reason: 'retryable-error' };
        }
        logger.info('job checkpointed and handed on', { jobKey: key, continuation });
        deps.onEvent?.({
          type: 'continued',
          runId: message.runId,
          jobKey: key,
          continuation,
          attemptMs: work.durationMs,
        });
        return { kind: 'ack', reason: 'continued' };
      }
      case 'give-back': {
        if (decision.reason === 'cancelled') {
          await Promise.all([ledger.flushed(), state.releaseLease(lease, undefined, work.costMicros)]);
          await queue.changeVisibility(record, 0);
        } else {
          await this.recordConfirmedCost();
        }
        deps.onEvent?.({ type: 'returned', jobKey: key, reason: decision.reason });
        return { kind: 'retry', reason: decision.reason };
      }
      case 'retry': {
        const { error } = decision;
        logger.warn('job failed with a retryable error; the queue will deliver it again', {
          jobKey: key,
          code: error.code,
          receiveCount: record.receiveCount,
        });
        await Promise.all([
          ledger.flushed(),
          state.releaseLease(lease, { code: error.code, message: error.message }, work.costMicros),
        ]);
        await queue.changeVisibility(record, retryDelayFor(record, deps));
        deps.onEvent?.({ type: 'returned', jobKey: key, reason: error.code, message: error.message });
        return { kind: 'retry', reason: 'retryable-error' };
      }
      case 'finish': {
        const { outcome, error } = decision;
        const [recorded] = await Promise.all([
          state.finishJob(lease, outcome, deps.clock()),
          ledger.flushed(),
        ]);
        if (recorded === 'lost') {
          await this.recordConfirmedCost();
          logger.warn('lease lost before the outcome was recorded; the holder decides', { jobKey: key });
          deps.onEvent?.({ type: 'returned', jobKey: key, reason: 'lease-lost' });
          return { kind: 'retry', reason: 'lease-lost' };
        }
        if (outcome.status === 'FAILED' && error) {
          // A failed job ends in the dead-letter queue with its reason, ready for a redrive.
          await queue.deadLetter(record, { code: error.code, message: error.message });
        }
        logger.info('job finished', { jobKey: key, status: outcome.status, costMicros: outcome.costMicros });
        deps.onEvent?.({
          type: 'finished',
          runId: message.runId,
          jobKey: key,
          status: outcome.status,
          costMicros: outcome.costMicros,
          durationMs: outcome.durationMs,
          attemptMs: work.durationMs,
          ...(outcome.errorCode ? { errorCode: outcome.errorCode } : {}),
        });
        return { kind: 'ack', reason: 'finished', status: outcome.status };
      }
    }
  }

  /**
   * A lease lost: what this attempt spent is recorded on the job all the same (not fenced:
   * it is a fact about this attempt), as far as the ledger confirmed it.
   */
  private async recordConfirmedCost(): Promise<void> {
    const confirmed = await this.ledger.confirmedMicros();
    if (confirmed > 0) await this.deps.state.recordAttemptCost(this.lease, confirmed);
  }
}

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

export const retryDelayFor = (record: QueueRecord, deps: Pick<WorkerDeps, 'retryDelay'>): number =>
  (deps.retryDelay ?? retryDelaySeconds)(record.receiveCount);

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
