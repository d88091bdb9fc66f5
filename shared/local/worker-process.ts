/**
 * A local worker process: the local twin of the Lambda handler. It wires the same
 * adapters and calls the same core; the dispatcher invokes it one batch at a time.
 */
import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import { dynamoState } from '../adapters/dynamo/index.js';
import { type EngineReply, type EngineRequest, embeddedDynamoClient } from '../adapters/embedded-dynamo.js';
import { FolderWorkspaceStore } from '../adapters/folder-workspace.js';
import { envToken } from '../adapters/github-token.js';
import { ProcessSandbox } from '../adapters/process-sandbox.js';
import { workerAgents } from '../agents/index.js';
import { retryDelaySeconds } from '../domain/attempt.js';
import { holdSlot } from '../domain/slot-keeper.js';
import { processBatch, type WorkerDeps } from '../domain/worker.js';
import type { Logger } from '../ports/agent.js';
import type { QueueControl } from '../ports/queue.js';
import type { StatePort } from '../ports/state.js';
import type { FromWorker, QueueRequest, ToWorker, WorkerInit } from './protocol.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const send = (message: FromWorker) => process.send?.(message);

function jsonLogger(workerId: string): Logger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    process.stdout.write(
      `${JSON.stringify({ time: new Date().toISOString(), level, workerId, message, ...fields })}\n`,
    );
  return { info: log('INFO'), warn: log('WARN'), error: log('ERROR') };
}

let nextRequest = 0;
/** Requests to the run's process (the queue's, the engine's) awaiting their reply, by id. */
const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

/** Sends a request to the run's process over IPC; its reply (by id) settles the promise. */
function ask<T>(message: (requestId: number) => FromWorker): Promise<T> {
  const requestId = ++nextRequest;
  return new Promise((resolve, reject) => {
    pending.set(requestId, { resolve: resolve as (value: unknown) => void, reject });
    send(message(requestId));
  });
}

/** Settles the request a reply answers. */
function answer(requestId: number, outcome: { value?: unknown; error?: string }): void {
  const waiter = pending.get(requestId);
  pending.delete(requestId);
  if (outcome.error) waiter?.reject(new Error(outcome.error));
  else waiter?.resolve(outcome.value);
}

/** The queue lives in the dispatcher; a worker reaches it over IPC, as a Lambda reaches SQS over HTTPS. */
const queue: QueueControl = {
  changeVisibility: (record, seconds) => request({ op: 'changeVisibility', record, seconds }),
  deadLetter: (record, reason) => request({ op: 'deadLetter', record, reason }),
  send: async (entries) => {
    await request({ op: 'send', entries: [...entries] });
    return { sent: entries.map((e) => e.id), failed: [] };
  },
};

function request(queueRequest: QueueRequest): Promise<void> {
  return ask((requestId) => ({ type: 'queue', requestId, request: queueRequest }));
}

type BaseDeps = Omit<WorkerDeps, 'owner' | 'deadline' | 'signal'>;

const calls = { state: 0, workspace: 0, queue: 0 };

/** Counts calls through an adapter (and, for a workspace store, through the workspaces it opens). */
function counted<T extends object>(inner: T, kind: keyof typeof calls): T {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'open') return (prefix: string) => counted(value.call(target, prefix), kind);
      return (...args: unknown[]) => {
        calls[kind]++;
        return value.apply(target, args);
      };
    },
  });
}

/** The state table's engine lives in the run's process too; requests go over the same channel. */
function callEngine(request: EngineRequest): Promise<EngineReply> {
  return ask((requestId) => ({ type: 'engine', requestId, request }));
}

function wire(init: WorkerInit): BaseDeps & { readonly state: StatePort } {
  const state = dynamoState({
    tableName: init.tableName,
    client: embeddedDynamoClient(init.dynamoEndpoint, 5, callEngine),
  });
  const workspaces = new FolderWorkspaceStore(init.workspaceRoot);
  return {
    state: init.countCalls ? counted(state, 'state') : state,
    queue: init.countCalls ? counted(queue, 'queue') : queue,
    workspaces: init.countCalls ? counted(workspaces, 'workspace') : workspaces,
    // The worker's GitHub access: read here, never handed to an agent.
    ...workerAgents(init.agent, {
      github: envToken(process.env),
      githubApiUrl: process.env.GITHUB_API_URL,
      // Commands see neither the run's state (its parent folder) nor this user's home.
      sandbox: () => new ProcessSandbox({ hide: [dirname(init.workspaceRoot), homedir()] }),
    }),
    logger: jsonLogger(init.workerId),
    clock: Date.now,
    workerId: init.workerId,
    leaseMs: init.leaseMs,
    heartbeatMs: init.heartbeatMs,
    maxReceiveCount: init.maxReceiveCount,
    retryDelay: (receiveCount) => retryDelaySeconds(receiveCount, init.retryDelay),
    onEvent: (event) => send({ type: 'event', event }),
  };
}

/**
 * Like a Lambda init phase: loads the SDK's code paths before the first job, with one of
 * each kind of call the job makes, written so that its condition cannot hold and nothing
 * is written. Once loads them; the three rounds it made before cost a hundred workers
 * 1,200 calls at start.
 */
async function warmUp(state: StatePort): Promise<void> {
  const lease = { runId: 'warm-up', jobKey: 'warm-up/warm-up#0', owner: 'warm-up', fence: -1 };
  await state.getRun('warm-up');
  await state.renewLease(lease, Date.now(), 1);
  await state.settle('warm-up', { id: 'warm-up', shard: 0 }, 0, 0);
  await state.finishJob(
    lease,
    { status: 'DONE', worker: 'warm-up', durationMs: 0, costMicros: 0 },
    Date.now(),
  );
}

let releaseSlot: () => Promise<void> = async () => {};

let base: BaseDeps | undefined;
let cancel = new AbortController();

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'init': {
      const wired = wire(message.init);
      warmUp(wired.state).then(
        async () => {
          // A local worker process is one worker for its whole life: it holds its slot,
          // renewing it, so `fanout status` shows it.
          const slot = await holdSlot(wired.state, {
            owner: `${message.init.workerId}/${process.pid}`,
            leaseMs: 30_000,
            clock: Date.now,
            slot: { name: message.init.workerId },
            renewEveryMs: 10_000,
          });
          if (slot) releaseSlot = () => slot.release();
          base = wired;
          send({ type: 'ready' });
        },
        (error: unknown) => {
          wired.logger.error('cannot reach the state engine', { error: String(error) });
          process.exit(1);
        },
      );
      break;
    }
    case 'invoke': {
      if (!base) throw new Error('invoke before init');
      cancel = new AbortController();
      const deps: WorkerDeps = {
        ...base,
        owner: `${base.workerId}/${process.pid}/${randomUUID().slice(0, 8)}`,
        deadline: message.deadline,
        signal: cancel.signal,
      };
      const started = performance.now();
      calls.state = 0;
      calls.workspace = 0;
      calls.queue = 0;
      processBatch(message.records, deps).then(
        (response) =>
          send({
            type: 'result',
            id: message.id,
            response,
            stats: {
              elapsedMs: performance.now() - started,
              calls: { ...calls },
              rssBytes: process.memoryUsage().rss,
            },
          }),
        (error: unknown) => {
          deps.logger.error('invocation failed', { error: String(error) });
          process.exit(1);
        },
      );
      break;
    }
    case 'cancel':
      cancel.abort();
      break;
    case 'engine-reply':
      answer(message.requestId, { value: message.reply });
      break;
    case 'queue-reply':
      answer(message.requestId, message.error ? { error: message.error } : {});
      break;
  }
});

// Ctrl-C in a terminal reaches the whole process group; stopping is the dispatcher's
// decision (finish running jobs, or cancel them), so a worker does not die of it.
process.on('SIGINT', () => {});

// The dispatcher is gone (it closes the engine only after we exit): give the slot back, then go.
process.on('disconnect', () => {
  const timeout = new Promise((resolve) => setTimeout(resolve, 1000));
  Promise.race([releaseSlot().catch(() => undefined), timeout]).finally(() => process.exit(0));
});
