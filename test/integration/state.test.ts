import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoState } from '../../shared/adapters/dynamo/index.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { type StateFixture, startState } from '../support/engines.js';

let fx: StateFixture;
beforeAll(async () => {
  fx = await startState();
});
afterAll(() => fx.close());

const done = { status: 'DONE' as const, worker: 'worker-01', durationMs: 10, costMicros: 5 };

describe('leases on dynalite', () => {
  it('gives a job to exactly one of two racing workers', async () => {
    for (let round = 0; round < 10; round++) {
      const key = `acme/api#race-${round}`;
      const answers = await Promise.all(
        ['a', 'b'].map((owner) =>
          fx.state.acquireLease('leases', key, { owner, worker: owner }, Date.now(), 10_000),
        ),
      );
      expect(answers.filter((a) => a.kind === 'acquired')).toHaveLength(1);
      expect(answers.filter((a) => a.kind === 'held')).toHaveLength(1);
    }
  });

  it('lets an expired lease be taken over and refuses the old holder by its fencing token', async () => {
    const key = 'acme/api#1';
    const t0 = 1_000_000;
    const first = await fx.state.acquireLease('leases', key, { owner: 'old', worker: 'w1' }, t0, 1000);
    expect(first).toMatchObject({ kind: 'acquired', fence: 1 });
    expect(
      await fx.state.acquireLease('leases', key, { owner: 'new', worker: 'w2' }, t0 + 999, 1000),
    ).toMatchObject({
      kind: 'held',
      owner: 'old',
    });
    const second = await fx.state.acquireLease(
      'leases',
      key,
      { owner: 'new', worker: 'w2' },
      t0 + 1001,
      1000,
    );
    expect(second).toMatchObject({ kind: 'acquired', fence: 2, attempts: 2 });

    const stale = { runId: 'leases', jobKey: key, owner: 'old', fence: 1 };
    expect(await fx.state.renewLease(stale, t0 + 1002, 1000)).toBe('lost');
    expect(await fx.state.finishJob(stale, done, t0 + 1002)).toBe('lost');
    expect(await fx.state.releaseLease(stale)).toBe('lost');

    const current = { runId: 'leases', jobKey: key, owner: 'new', fence: 2 };
    expect(await fx.state.renewLease(current, t0 + 1500, 1000)).toBe('renewed');
    expect(await fx.state.finishJob(current, { ...done, worker: 'w2' }, t0 + 1600)).toBe('recorded');
    const [job] = (await fx.state.listJobs('leases')).filter((j) => j.jobKey === key);
    expect(job).toMatchObject({ status: 'DONE', worker: 'w2', fence: 2, costMicros: 5 });
  });

  it('answers "finished" for a DONE job, so it is never run again', async () => {
    const key = 'acme/api#2';
    const got = await fx.state.acquireLease('leases', key, { owner: 'a', worker: 'w' }, Date.now(), 10_000);
    if (got.kind !== 'acquired') throw new Error('expected the lease');
    await fx.state.finishJob(
      { runId: 'leases', jobKey: key, owner: 'a', fence: got.fence },
      done,
      Date.now(),
    );
    expect(
      await fx.state.acquireLease('leases', key, { owner: 'b', worker: 'w' }, Date.now() + 10 ** 9, 1),
    ).toEqual({
      kind: 'finished',
      status: 'DONE',
    });
  });

  it('registers a job once: unsent until its message reached the queue, a duplicate after', async () => {
    const job = { runId: 'reg', jobKey: 'acme/api#3', title: 't', registeredAt: 1 };
    expect(await fx.state.registerJob(job)).toBe('created');
    expect(await fx.state.registerJob(job)).toBe('unsent');
    await fx.state.markEnqueued('reg', 'acme/api#3', 2);
    expect(await fx.state.registerJob(job)).toBe('exists');
  });
});

describe('budget ledger on dynalite', () => {
  it('grants 7 of 20 concurrent reservations against a budget that fits 7', async () => {
    await fx.state.createRun({ runId: 'budget-7', budgetMicros: 7_000, createdAt: 0 });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fx.state.reserve('budget-7', `job${i}.1.1`, 1_000)),
    );
    expect(answers.filter((a) => a.kind === 'reserved')).toHaveLength(7);
    expect(answers.filter((a) => a.kind === 'over-budget')).toHaveLength(13);
    const run = await fx.state.getRun('budget-7');
    expect(run).toMatchObject({ reservedMicros: 7_000, spentMicros: 0, availableMicros: 0 });
  });

  it('counts a settlement once, however often it is retried', async () => {
    await fx.state.createRun({ runId: 'settle', budgetMicros: 10_000, createdAt: 0 });
    const first = await fx.state.reserve('settle', 'j.1.1', 4_000);
    if (first.kind !== 'reserved') throw new Error(`expected reserved, got ${first.kind}`);
    expect(await fx.state.reserve('settle', 'j.1.1', 4_000)).toEqual({
      kind: 'duplicate',
      shard: first.shard,
    });
    const entry = { id: 'j.1.1', shard: first.shard };
    const answers = await Promise.all([1, 2, 3].map(() => fx.state.settle('settle', entry, 4_000, 2_500)));
    expect(answers.sort()).toEqual(['already-settled', 'already-settled', 'settled']);
    expect(await fx.state.getRun('settle')).toMatchObject({
      spentMicros: 2_500,
      reservedMicros: 0,
      availableMicros: 7_500,
      budgetMicros: 10_000,
    });
  });

  it('refuses any reservation against a budget of zero', async () => {
    await fx.state.createRun({ runId: 'zero', budgetMicros: 0, createdAt: 0 });
    expect((await fx.state.reserve('zero', 'j.1.1', 1)).kind).toBe('over-budget');
    expect((await fx.state.reserve('zero', 'j.1.2', 0)).kind).toBe('reserved');
  });
});

describe('worker slots on dynalite', () => {
  it('gives each of N holders its own slot, and none to the N+1th until one is released or expires', async () => {
    const now = 5_000_000;
    const got = await Promise.all(
      ['a', 'b', 'c'].map((owner, i) => fx.state.acquireSlot(3, owner, now, 10_000, i)),
    );
    expect([...got].sort()).toEqual(['worker-01', 'worker-02', 'worker-03']);
    expect(await fx.state.acquireSlot(3, 'd', now + 1, 10_000)).toBeUndefined();
    await fx.state.releaseSlot(got[1] as string, 'b', now + 2);
    expect(await fx.state.acquireSlot(3, 'd', now + 3, 10_000)).toBe(got[1]);
    expect(await fx.state.acquireSlot(3, 'e', now + 20_000, 10_000)).toBeDefined();
    const slots = await fx.state.listSlots();
    expect(slots.map((s) => s.workerId).sort()).toEqual(['worker-01', 'worker-02', 'worker-03']);
  });
});

describe('a missing table', () => {
  it('says which table is missing and what to do', async () => {
    const client: DynamoDBClient = embeddedDynamoClient(fx.engine.endpoint);
    const state = dynamoState({ tableName: 'no-such-table', client });
    await expect(state.getRun('r')).rejects.toThrowError(
      expect.objectContaining({
        code: 'TABLE_MISSING',
        message: expect.stringMatching(/"no-such-table" does not exist: deploy/),
      }),
    );
    client.destroy();
  });
});
