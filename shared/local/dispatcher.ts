import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EngineReply, EngineRequest } from '../adapters/embedded-dynamo.js';
import type { LocalQueue } from '../adapters/local-queue.js';
import { slotName } from '../domain/job.js';
import type { WorkerEvent } from '../domain/worker.js';
import type { BatchResponse, QueueRecord } from '../ports/queue.js';
import type { FinalStatus } from '../ports/state.js';
import type { FromWorker, InvocationStats, ToWorker, WorkerInit } from './protocol.js';

/**
 * The worker process: built JavaScript beside the built command line (dist/worker.mjs),
 * or, from the sources (tests, `npm run fanout`), the TypeScript through tsx.
 *
 * A built worker runs without --enable-source-maps: Node parses every bundle's map when
 * the process starts, which cost each worker 37 MB and a tenth of its start (measured
 * with 20 workers, issue #14); its stack traces name the bundle's functions, which keep
 * their names. A young generation of 1 MB semi-spaces (16 MB by default) keeps an idle
 * worker's private memory near 30 MB instead of 42 MB, for no measured loss of speed:
 * a worker's objects are short-lived and its scavenges small.
 */
const BUILT_WORKER = new URL('./worker.mjs', import.meta.url);
const WORKER = existsSync(fileURLToPath(BUILT_WORKER))
  ? { entry: BUILT_WORKER, execArgv: ['--max-semi-space-size=1'] }
  : {
      entry: new URL('./worker-process.ts', import.meta.url),
      execArgv: ['--import', import.meta.resolve('tsx')],
    };

export type SlotState = 'starting' | 'idle' | 'busy' | 'stopped';

export type DispatchEvent =
  | { readonly type: 'worker'; readonly workerId: string; readonly pid: number; readonly event: WorkerEvent }
  | { readonly type: 'slot'; readonly workerId: string; readonly pid: number; readonly state: SlotState }
  | { readonly type: 'crash'; readonly workerId: string; readonly pid: number; readonly reason: string }
  /** Worker processes ready so far, while the fleet starts. */
  | { readonly type: 'starting'; readonly ready: number; readonly total: number };

/** One worker process and the invocation it is running. */
class WorkerProcess {
  private child: ChildProcess;
  private invocation:
    | {
        id: number;
        resolve: (r: { response: BatchResponse; stats: InvocationStats }) => void;
        reject: (e: Error) => void;
        timer: NodeJS.Timeout;
      }
    | undefined;
  private nextId = 0;
  readonly ready: Promise<void>;

  constructor(
    readonly init: WorkerInit,
    private readonly queue: LocalQueue,
    private readonly engine: (request: EngineRequest) => Promise<EngineReply>,
    logFd: number | 'ignore',
    private readonly emit: (event: DispatchEvent) => void,
  ) {
    // `npm run profile` profiles every worker too (NODE_OPTIONS refuses --cpu-prof).
    const profileDir = process.env.FANOUT_CPU_PROF_DIR;
    this.child = fork(WORKER.entry, [], {
      execArgv: profileDir
        ? [...WORKER.execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`]
        : WORKER.execArgv,
      stdio: ['ignore', logFd, logFd, 'ipc'],
      serialization: 'advanced',
    });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('exit', (code) =>
        reject(new Error(`worker ${init.workerId} exited at start (code ${code})`)),
      );
      this.child.on('message', (message: FromWorker) => {
        if (message.type === 'ready') resolve();
        else this.onMessage(message);
      });
      this.post({ type: 'init', init });
    });
    this.child.on('exit', (code, signal) => {
      const current = this.invocation;
      this.invocation = undefined;
      if (current) {
        clearTimeout(current.timer);
        current.reject(new Error(`worker process exited (${signal ?? `code ${code}`}) during an invocation`));
      }
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  private post(message: ToWorker): void {
    if (this.child.connected) this.child.send(message);
  }

  private onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'event':
        this.emit({ type: 'worker', workerId: this.init.workerId, pid: this.pid, event: message.event });
        break;
      case 'result': {
        const current = this.invocation;
        if (current?.id !== message.id) return;
        this.invocation = undefined;
        clearTimeout(current.timer);
        current.resolve({ response: message.response, stats: message.stats });
        break;
      }
      case 'engine': {
        const { request, requestId } = message;
        this.engine(request).then((reply) => this.post({ type: 'engine-reply', requestId, reply }));
        break;
      }
      case 'queue': {
        const { request, requestId } = message;
        const done: Promise<unknown> =
          request.op === 'changeVisibility'
            ? this.queue.changeVisibility(request.record, request.seconds)
            : request.op === 'deadLetter'
              ? this.queue.deadLetter(request.record, request.reason)
              : this.queue.send(request.entries);
        done.then(
          () => this.post({ type: 'queue-reply', requestId }),
          (error: unknown) => this.post({ type: 'queue-reply', requestId, error: String(error) }),
        );
        break;
      }
    }
  }

  /** Runs one batch; past the timeout the process is killed, as Lambda ends a timed-out invocation. */
  invoke(
    records: QueueRecord[],
    timeoutMs: number,
  ): Promise<{ response: BatchResponse; stats: InvocationStats }> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.invocation = undefined;
        this.child.kill('SIGKILL');
        reject(new Error(`invocation timed out after ${timeoutMs}ms; worker process killed`));
      }, timeoutMs);
      this.invocation = { id, resolve, reject, timer };
      this.post({ type: 'invoke', id, records, deadline: Date.now() + timeoutMs });
    });
  }

  cancel(): void {
    this.post({ type: 'cancel' });
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.disconnect();
    });
  }
}

export interface DispatcherOptions {
  readonly workers: number;
  readonly batchSize: number;
  readonly timeoutMs: number;
  readonly queue: LocalQueue;
  /** The run's state engine, which the workers reach through their channel. */
  readonly engine: (request: EngineRequest) => Promise<EngineReply>;
  readonly initFor: (workerId: string) => WorkerInit;
  readonly logFd: number | 'ignore';
  readonly onEvent: (event: DispatchEvent) => void;
}

/**
 * Behaves like the Lambda SQS event source mapping: at most `workers` invocations at
 * once, each a batch of up to `batchSize` records; records not reported as failures
 * are deleted; a crashed or timed-out invocation deletes nothing and its process is
 * replaced, so its records come back after the visibility timeout.
 */
export class Dispatcher {
  private readonly slots: WorkerProcess[] = [];
  private stopping = false;
  private firstDispatchAt: number | undefined;
  private lastResultAt: number | undefined;
  /**
   * The agent's time this session on each job it worked (by run and job key), and the
   * outcome it reached, if it did: what efficiency is measured on.
   */
  readonly sessionWork = new Map<
    string,
    { runId: string; jobKey: string; workMs: number; status?: FinalStatus }
  >();
  /** Each invocation's time, calls and memory in its worker process. */
  readonly invocations: InvocationStats[] = [];

  constructor(private readonly options: DispatcherOptions) {}

  /** Starts every worker process and waits until each has wired its adapters. */
  async start(): Promise<void> {
    for (let slot = 0; slot < this.options.workers; slot++) this.slots.push(this.spawn(slot));
    let ready = 0;
    const total = this.slots.length;
    await Promise.all(
      this.slots.map((worker) =>
        worker.ready.then(() => this.options.onEvent({ type: 'starting', ready: ++ready, total })),
      ),
    );
  }

  private spawn(slot: number): WorkerProcess {
    const workerId = slotName(slot);
    const worker = new WorkerProcess(
      this.options.initFor(workerId),
      this.options.queue,
      this.options.engine,
      this.options.logFd,
      (event) => {
        const e = event.type === 'worker' ? event.event : undefined;
        if (e?.type === 'finished' || e?.type === 'continued') {
          const id = `${e.runId} ${e.jobKey}`;
          const work = this.sessionWork.get(id) ?? { runId: e.runId, jobKey: e.jobKey, workMs: 0 };
          work.workMs += e.attemptMs;
          if (e.type === 'finished') work.status = e.status;
          this.sessionWork.set(id, work);
        }
        this.options.onEvent(event);
      },
    );
    worker.ready.then(
      () => this.options.onEvent({ type: 'slot', workerId, pid: worker.pid, state: 'idle' }),
      () => undefined,
    );
    return worker;
  }

  /** Dispatches until the queue is empty or `stop` is called. */
  async run(): Promise<void> {
    await Promise.all(this.slots.map((_, slot) => this.runSlot(slot)));
  }

  private async runSlot(slot: number): Promise<void> {
    const { queue, batchSize, timeoutMs, onEvent } = this.options;
    while (!this.stopping) {
      const records = await queue.receive(batchSize, 250);
      if (this.stopping) {
        for (const record of records) await queue.changeVisibility(record, 0);
        break;
      }
      if (records.length === 0) {
        if (queue.isEmpty()) break;
        continue;
      }
      this.firstDispatchAt ??= Date.now();
      let worker = this.slots[slot] as WorkerProcess;
      onEvent({ type: 'slot', workerId: worker.init.workerId, pid: worker.pid, state: 'busy' });
      try {
        const { response, stats } = await worker.invoke(records, timeoutMs);
        this.invocations.push(stats);
        const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
        for (const record of records) if (!failed.has(record.messageId)) await queue.delete(record);
        this.lastResultAt = Date.now();
        onEvent({ type: 'slot', workerId: worker.init.workerId, pid: worker.pid, state: 'idle' });
      } catch (error) {
        // The whole batch comes back, as on Lambda (pitfall 4). Lambda cannot know that nobody
        // works on it and waits out the visibility timeout; here the process is known dead,
        // so the records come back at once. That is safe: a job's lease, not the queue, keeps
        // it from running twice, and its next delivery waits until the dead worker's lease ends.
        for (const record of records) await queue.changeVisibility(record, 0);
        onEvent({
          type: 'crash',
          workerId: worker.init.workerId,
          pid: worker.pid,
          reason: (error as Error).message,
        });
        worker = this.spawn(slot);
        this.slots[slot] = worker;
        await worker.ready;
      }
    }
    const worker = this.slots[slot] as WorkerProcess;
    onEvent({ type: 'slot', workerId: worker.init.workerId, pid: worker.pid, state: 'stopped' });
  }

  /** Takes no new work; running invocations finish. With `cancel`, they give their jobs back now. */
  stop(cancel: boolean): void {
    this.stopping = true;
    if (cancel) for (const worker of this.slots) worker.cancel();
  }

  get stopped(): boolean {
    return this.stopping;
  }

  /** Start of the first dispatch to the last result, in ms. */
  get wallMs(): number {
    return this.firstDispatchAt === undefined || this.lastResultAt === undefined
      ? 0
      : this.lastResultAt - this.firstDispatchAt;
  }

  pids(): Record<string, number> {
    return Object.fromEntries(this.slots.map((w) => [w.init.workerId, w.pid]));
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((worker) => worker.stop()));
  }
}
