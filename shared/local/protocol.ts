import type { EngineReply, EngineRequest } from '../adapters/embedded-dynamo.js';
import type { AgentConfig } from '../domain/agent-settings.js';
import type { WorkerEvent } from '../domain/worker.js';
import type { BatchResponse, DeadLetterReason, QueueRecord, SendEntry } from '../ports/queue.js';

/** Everything a worker process needs to wire its adapters, sent once at start. */
export interface WorkerInit {
  readonly workerId: string;
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly workspaceRoot: string;
  readonly agent: AgentConfig;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly maxReceiveCount: number;
  /** Backoff of a retryable failure before its next delivery (the local twin of Lambda's 30 s to 15 min). */
  readonly retryDelay: { readonly baseSeconds: number; readonly maxSeconds: number };
  /** Count each invocation's calls to the state table, the workspace and the queue (for `fanout bench`). */
  readonly countCalls?: boolean;
}

/** What one invocation cost outside the agent, as measured in the worker process. */
export interface InvocationStats {
  readonly elapsedMs: number;
  readonly calls: { readonly state: number; readonly workspace: number; readonly queue: number };
  readonly rssBytes: number;
}

export type ToWorker =
  | { readonly type: 'init'; readonly init: WorkerInit }
  | {
      readonly type: 'invoke';
      readonly id: number;
      readonly records: QueueRecord[];
      readonly deadline: number;
    }
  | { readonly type: 'cancel' }
  | { readonly type: 'queue-reply'; readonly requestId: number; readonly error?: string }
  | { readonly type: 'engine-reply'; readonly requestId: number; readonly reply: EngineReply };

export type QueueRequest =
  | { readonly op: 'changeVisibility'; readonly record: QueueRecord; readonly seconds: number }
  | { readonly op: 'deadLetter'; readonly record: QueueRecord; readonly reason: DeadLetterReason }
  | { readonly op: 'send'; readonly entries: SendEntry[] };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'event'; readonly event: WorkerEvent }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly response: BatchResponse;
      readonly stats: InvocationStats;
    }
  | { readonly type: 'queue'; readonly requestId: number; readonly request: QueueRequest }
  /** A state-table request for the run's engine, over the channel instead of HTTP. */
  | { readonly type: 'engine'; readonly requestId: number; readonly request: EngineRequest };
