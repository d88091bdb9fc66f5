import type { Agent, Logger } from '../ports/agent.js';
import type { QueueControl } from '../ports/queue.js';
import type { FinalStatus, JobLeases, RunLedger } from '../ports/state.js';
import type { WorkspaceStore } from '../ports/workspace.js';
import type { AgentConfig } from './agent-settings.js';
import type { ErrorCode } from './errors.js';

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
  /** The worker needs the jobs and the ledger; worker slots are the host's (Lambda's or the process's). */
  readonly state: RunLedger & JobLeases;
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
      /** 'deferred': another worker holds the job; the delivery was handed back as a new, delayed message. */
      readonly reason: 'finished' | 'already-finished' | 'continued' | 'deferred';
      readonly status?: FinalStatus;
    }
  | { readonly kind: 'retry'; readonly reason: 'lease-held' | 'retryable-error' | 'lease-lost' | 'cancelled' }
  | { readonly kind: 'rejected'; readonly reason: 'poison' };
