import type { ErrorCode } from '../domain/errors.js';
import type { Priority } from '../domain/job.js';
import type { Verdict } from './agent.js';

export const JOB_STATUSES = ['PENDING', 'RUNNING', 'DONE', 'FAILED', 'SKIPPED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type FinalStatus = Extract<JobStatus, 'DONE' | 'FAILED' | 'SKIPPED'>;

export interface RunRecord {
  readonly runId: string;
  readonly budgetMicros: number;
  readonly spentMicros: number;
  /** Reservations of crashed attempts, charged in full because they may have been spent. */
  readonly abandonedMicros: number;
  readonly reservedMicros: number;
  /** How many reservations are not yet settled. */
  readonly openReservations: number;
  /** budget - spent - abandoned - reserved; a reservation is granted only while this stays >= 0. */
  readonly availableMicros: number;
  readonly jobCount: number;
  readonly createdAt: number;
  /** Each repository's own budget within the run's, when the run has one (`--repo-budget-usd`). */
  readonly repoBudgetMicros?: number;
  /**
   * Whether the totals are one instant's: the ledger is several items, and a read of them all
   * is a snapshot only when no write landed between two reads of every item (DynamoDB has no
   * snapshot read without transactions). False under a steady stream of writes: then each
   * item is exact and the totals are a sum over a few milliseconds.
   */
  readonly consistent: boolean;
}

/** Where a reservation is held: its id and the ledger shard that holds it. */
export interface LedgerEntry {
  readonly id: string;
  readonly shard: number;
}

export type ReserveAnswer =
  | { readonly kind: 'reserved' | 'duplicate'; readonly shard: number }
  | {
      readonly kind: 'over-budget';
      /**
       * budget - spent - abandoned as the refusal saw it: when the amount fits in it, the
       * reservations now held may settle below their worst case and leave room for it.
       */
      readonly unspentMicros: number;
    }
  /** Every shard holds its most open reservations, or the credit moved under this call too often: ask again shortly. */
  | { readonly kind: 'busy' };

export interface JobRecord {
  readonly runId: string;
  readonly jobKey: string;
  readonly title: string;
  /** Normal when absent (jobs registered before priorities). */
  readonly priority?: Priority;
  readonly status: JobStatus;
  readonly fence: number;
  readonly attempts: number;
  readonly leaseOwner?: string;
  readonly leaseUntil?: number;
  /** The worker slot that holds or last held the job. */
  readonly worker?: string;
  readonly startedAt?: number;
  /** The lease's last renewal by the worker's heartbeat. */
  readonly heartbeatAt?: number;
  readonly finishedAt?: number;
  /** Time the agent worked on the attempt that finished the job. */
  readonly durationMs?: number;
  /** What every attempt at the job spent, together. */
  readonly costMicros: number;
  readonly errorCode?: ErrorCode;
  readonly errorMessage?: string;
  /** What the repository's tests said of a DONE job's change, when they ran. */
  readonly verdict?: Verdict;
  /** One line of what the tests and the reviewer said (with the verdict), e.g. for the report. */
  readonly verification?: string;
  /** The model (llm) or agent that did the finishing attempt: the dashboard's per-model spend. */
  readonly model?: string;
  /** Invocations the finishing attempt took: 1, or more when it continued from checkpoints. */
  readonly invocations?: number;
  readonly registeredAt?: number;
  /** Set once the job's message reached the queue; a job without it was never sent. */
  readonly enqueuedAt?: number;
}

/** A worker identity (worker-01..N), held by one invocation (Lambda) or one process (local). */
export interface WorkerSlot {
  readonly workerId: string;
  readonly owner?: string;
  /** Epoch ms; the slot is free after it. */
  readonly leaseUntil: number;
  readonly heartbeatAt: number;
}

export type LeaseAnswer =
  | {
      readonly kind: 'acquired';
      readonly fence: number;
      readonly attempts: number;
      /** When the job first started, across all its invocations. */
      readonly firstStartedAt: number;
    }
  | { readonly kind: 'held'; readonly until: number; readonly owner: string }
  | { readonly kind: 'finished'; readonly status: FinalStatus };

export interface Lease {
  readonly runId: string;
  readonly jobKey: string;
  readonly owner: string;
  readonly fence: number;
}

export interface JobOutcome {
  readonly status: FinalStatus;
  readonly worker: string;
  readonly durationMs: number;
  readonly costMicros: number;
  readonly verdict?: Verdict;
  readonly verification?: string;
  readonly model?: string;
  readonly invocations?: number;
  readonly errorCode?: ErrorCode;
  readonly errorMessage?: string;
}

/**
 * The state the fleet shares, split by role. Every method is one single-item conditional
 * write (or read), so it works on DynamoDB and dynalite alike.
 */

/** Runs and the budget ledger. */
export interface RunLedger {
  createRun(run: {
    runId: string;
    budgetMicros: number;
    createdAt: number;
    /** Budget shards (items the reservations spread over); the adapter's default when absent. */
    ledgerShards?: number;
    /** Each repository's budget within this run's (recorded, for the sends that follow). */
    repoBudgetMicros?: number;
    /**
     * False for a ledger that is not a run (a repository's budget within one): it is left out
     * of listRuns. @default true
     */
    listed?: boolean;
  }): Promise<'created' | 'exists'>;
  getRun(runId: string): Promise<RunRecord | undefined>;
  /** Runs, newest first. */
  listRuns(limit: number): Promise<RunRecord[]>;
  /** Adds to the run's job count once all of a send's jobs are registered. */
  addJobCount(runId: string, count: number): Promise<void>;
  /**
   * Reserves against the run budget: granted only if spent + reserved stays within it.
   * 'over-budget' only when the budget as a whole (not one shard of it) cannot cover it.
   */
  reserve(runId: string, reservationId: string, amountMicros: number): Promise<ReserveAnswer>;
  /** Turns a reservation into spend (or abandoned spend). Idempotent: settling twice counts once. */
  settle(
    runId: string,
    entry: LedgerEntry,
    reservedMicros: number,
    actualMicros: number,
    kind?: 'spent' | 'abandoned',
  ): Promise<'settled' | 'already-settled'>;
  /** The reservations not yet settled, for closing those that crashed attempts left open. */
  openReservations(runId: string): Promise<LedgerEntry[]>;
}

/** Jobs, their leases (with the fencing token) and their outcomes. */
export interface JobLeases {
  /**
   * Records a job as PENDING. 'unsent' when the run has it but no send of it ever
   * succeeded (a send that stopped half-way), 'exists' when it was sent before.
   */
  registerJob(job: {
    runId: string;
    jobKey: string;
    title: string;
    registeredAt: number;
    priority?: Priority;
  }): Promise<'created' | 'unsent' | 'exists'>;
  /** Notes that the job's message reached the queue. */
  markEnqueued(runId: string, jobKey: string, now: number): Promise<void>;
  /** Takes the job for `holder.owner` (one invocation) on `holder.worker` (its slot), unless someone holds it or it is finished. */
  acquireLease(
    runId: string,
    jobKey: string,
    holder: { owner: string; worker: string },
    now: number,
    leaseMs: number,
  ): Promise<LeaseAnswer>;
  renewLease(lease: Lease, now: number, leaseMs: number): Promise<'renewed' | 'lost'>;
  /**
   * Gives the job back (PENDING) without an outcome, so the next delivery can take it at
   * once, recording what this attempt spent.
   */
  releaseLease(
    lease: Lease,
    error?: { code: ErrorCode; message: string },
    costMicros?: number,
  ): Promise<'released' | 'lost'>;
  /** Records what an attempt that lost its lease spent, so the job's cost misses none of it. */
  recordAttemptCost(lease: Lease, costMicros: number): Promise<void>;
  /** Makes a FAILED job PENDING again, for a redrive; 'not-failed' leaves any other job as it is. */
  reopenJob(runId: string, jobKey: string): Promise<'reopened' | 'not-failed'>;
  /** Records the outcome, conditioned on the fencing token: a stale worker gets 'lost'. */
  finishJob(lease: Lease, outcome: JobOutcome, now: number): Promise<'recorded' | 'lost'>;
  listJobs(runId: string): Promise<JobRecord[]>;
  getJob(runId: string, jobKey: string): Promise<JobRecord | undefined>;
}

/** Worker identities (worker-01..N), each leased by one invocation (Lambda) or one process (local). */
export interface WorkerSlots {
  /** Takes the first free slot of `worker-01..worker-{count}`, or undefined when all are held. */
  acquireSlot(
    count: number,
    owner: string,
    now: number,
    leaseMs: number,
    prefer?: number,
  ): Promise<string | undefined>;
  /** Takes the named slot if free or already ours. */
  claimSlot(workerId: string, owner: string, now: number, leaseMs: number): Promise<boolean>;
  releaseSlot(workerId: string, owner: string, now: number): Promise<void>;
  listSlots(): Promise<WorkerSlot[]>;
}

/** All three roles on one store (one DynamoDB table). */
export type StatePort = RunLedger & JobLeases & WorkerSlots;
