import { describe, expect, it } from 'vitest';
import { LocalQueue } from '../../shared/adapters/local-queue.js';
import { decide, type Work } from '../../shared/domain/attempt.js';
import { FanoutError } from '../../shared/domain/errors.js';
import type { JobMessage } from '../../shared/domain/job.js';
import { processRecord, type WorkerDeps } from '../../shared/domain/worker.js';
import type { Agent } from '../../shared/ports/agent.js';
import type { Workspace, WorkspaceStore } from '../../shared/ports/workspace.js';
import { MemoryState } from '../support/memory-state.js';

const message: JobMessage = {
  v: 1,
  runId: 'r1',
  issue: { repo: 'acme/api', number: 1, title: 'one', body: '', labels: [] },
  sentAt: 0,
};
const context = { message, receiveCount: 1, maxReceiveCount: 3, stopping: false, workerId: 'worker-01' };
const work = (over: Partial<Work> = {}): Work => ({
  durationMs: 500,
  costMicros: 10,
  continued: false,
  ...over,
});
const retryable = (code: 'AGENT_FAILED' | 'CANCELLED' | 'LEASE_LOST') =>
  new FanoutError(code, code, { retryable: true });

describe('what becomes of a job after one attempt (a pure decision)', () => {
  it('finishes DONE with the time of all its invocations, their count, and the model it counts under', () => {
    expect(decide(work(), { ...context, message: { ...message, workedMs: 1000 } })).toEqual({
      kind: 'finish',
      outcome: { status: 'DONE', worker: 'worker-01', durationMs: 1500, costMicros: 10, invocations: 1 },
    });
    expect(
      decide(work(), {
        ...context,
        model: 'scripted:demo',
        message: { ...message, continuation: 2, workedMs: 1000 },
      }),
    ).toMatchObject({ kind: 'finish', outcome: { invocations: 3, model: 'scripted:demo' } });
  });

  it('hands a checkpointed job on, counting continuations and stalls', () => {
    expect(decide(work({ continued: true }), context)).toEqual({
      kind: 'continue',
      continuation: 1,
      workedMs: 500,
      stalls: 0,
    });
    expect(decide(work({ continued: true, durationMs: 10 }), context)).toMatchObject({
      kind: 'continue',
      stalls: 1,
    });
  });

  it('fails a job that stalled three times in a row with NO_PROGRESS', () => {
    const stalled = decide(work({ continued: true, durationMs: 10 }), {
      ...context,
      message: { ...message, stalls: 2 },
    });
    expect(stalled).toMatchObject({
      kind: 'finish',
      outcome: { status: 'FAILED', errorCode: 'NO_PROGRESS' },
    });
  });

  it('gives a job back when its lease was lost, or when the run is stopping', () => {
    expect(decide(work({ error: retryable('LEASE_LOST') }), context)).toEqual({
      kind: 'give-back',
      reason: 'lease-lost',
    });
    expect(decide(work({ error: retryable('CANCELLED') }), { ...context, stopping: true })).toEqual({
      kind: 'give-back',
      reason: 'cancelled',
    });
  });

  it('retries a retryable error while deliveries are left, then fails it', () => {
    const error = retryable('AGENT_FAILED');
    expect(decide(work({ error }), context)).toEqual({ kind: 'retry', error });
    expect(decide(work({ error }), { ...context, receiveCount: 3 })).toMatchObject({
      kind: 'finish',
      outcome: { status: 'FAILED', errorCode: 'AGENT_FAILED' },
    });
  });

  it('skips a job the budget cannot cover', () => {
    const error = new FanoutError('BUDGET_EXHAUSTED', 'no room');
    expect(decide(work({ error }), context)).toMatchObject({
      kind: 'finish',
      outcome: { status: 'SKIPPED' },
    });
  });
});

/** A workspace store in memory: enough for the agent's writes through the fenced workspace. */
function memoryWorkspaces(): WorkspaceStore & { files: Map<string, Uint8Array> } {
  const files = new Map<string, Uint8Array>();
  return {
    files,
    open(prefix: string): Workspace {
      return {
        prefix,
        location: `memory:${prefix}`,
        write: async (path, data) => {
          files.set(prefix + path, typeof data === 'string' ? Buffer.from(data) : data);
        },
        read: async (path) => files.get(prefix + path),
        list: async () =>
          [...files.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)),
        remove: async (path) => {
          files.delete(prefix + path);
        },
      };
    },
  };
}

describe('one attempt on in-memory state', () => {
  const agent = (outcome: 'ok' | 'retry'): Agent => ({
    name: 'fixed',
    async run(_job, workspace, ctx) {
      const reservation = await ctx.spend.reserve(5000);
      await reservation.settle(3000);
      await workspace.write('out.txt', 'done');
      if (outcome === 'retry') throw new FanoutError('AGENT_FAILED', 'try again', { retryable: true });
      return { summary: 'ok' };
    },
    firstReservationMicros: () => 5000,
  });

  async function deliver(state: MemoryState, a: Agent, owner: string) {
    const queue = LocalQueue.open(undefined, { visibilityTimeoutMs: 60_000, maxReceiveCount: 3 });
    await queue.send([{ id: '1', body: JSON.stringify(message) }]);
    const [record] = await queue.receive(1, 0);
    const deps: WorkerDeps = {
      state,
      queue,
      workspaces: memoryWorkspaces(),
      agent: a,
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      clock: Date.now,
      workerId: 'worker-01',
      owner,
      leaseMs: 10_000,
      heartbeatMs: 3000,
      maxReceiveCount: 3,
      deadline: Date.now() + 60_000,
      retryDelay: () => 0,
    };
    return processRecord(record as NonNullable<typeof record>, deps);
  }

  it('takes the lease with the early reservation, settles, records the outcome once and acknowledges', async () => {
    const state = new MemoryState();
    await state.createRun({ runId: 'r1', budgetMicros: 100_000, createdAt: 0 });
    expect(await deliver(state, agent('ok'), 'a')).toEqual({
      kind: 'ack',
      reason: 'finished',
      status: 'DONE',
    });
    const job = await state.getJob('r1', 'acme/api#1');
    expect(job).toMatchObject({ status: 'DONE', costMicros: 3000, attempts: 1 });
    expect(await state.getRun('r1')).toMatchObject({
      spentMicros: 3000,
      reservedMicros: 0,
      availableMicros: 97_000,
    });
    expect(state.calls.filter((c) => c === 'finishJob')).toHaveLength(1);
  });

  it('releases the lease with the attempt cost on a retryable error; a DONE job is not run again', async () => {
    const state = new MemoryState();
    await state.createRun({ runId: 'r1', budgetMicros: 100_000, createdAt: 0 });
    expect(await deliver(state, agent('retry'), 'a')).toEqual({ kind: 'retry', reason: 'retryable-error' });
    expect(await state.getJob('r1', 'acme/api#1')).toMatchObject({ status: 'PENDING', costMicros: 3000 });
    expect(await deliver(state, agent('ok'), 'b')).toMatchObject({ kind: 'ack', status: 'DONE' });
    expect(await deliver(state, agent('ok'), 'c')).toEqual({
      kind: 'ack',
      reason: 'already-finished',
      status: 'DONE',
    });
    expect(await state.getJob('r1', 'acme/api#1')).toMatchObject({ attempts: 2, costMicros: 6000 });
  });
});
