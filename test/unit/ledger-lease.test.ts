import { describe, expect, it } from 'vitest';
import { RESERVATION_ID_MAX_BYTES } from '../../shared/adapters/dynamo/schema.js';
import { FanoutError } from '../../shared/domain/errors.js';
import { LeaseKeeper } from '../../shared/domain/lease.js';
import { AttemptLedger, reclaimAbandoned, reservationId } from '../../shared/domain/ledger.js';
import { holdSlot } from '../../shared/domain/slot-keeper.js';
import { MemoryState } from '../support/memory-state.js';

const silent = { info: () => {}, warn: () => {}, error: () => {} };

async function withRun(budgetMicros: number) {
  const state = new MemoryState();
  await state.createRun({ runId: 'r', budgetMicros, createdAt: 0 });
  return state;
}

describe('reservation ids', () => {
  it('stay within the bytes a ledger shard counts on, whatever the job key and owner', () => {
    const longest = reservationId(
      { jobKey: `${'o'.repeat(39)}/${'r'.repeat(100)}#${'9'.repeat(12)}`, owner: 'x'.repeat(500) },
      99_999,
      10 ** 12, // a million dollars, in micro-USD
      9_999_999_999_999, // the year 2286, in epoch ms
    );
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(RESERVATION_ID_MAX_BYTES);
    // Different jobs and owners give different ids; the same give the same.
    const a = reservationId({ jobKey: 'a/b#1', owner: 'o1' }, 1, 5, 7);
    expect(reservationId({ jobKey: 'a/b#1', owner: 'o1' }, 1, 5, 7)).toBe(a);
    expect(reservationId({ jobKey: 'a/b#2', owner: 'o1' }, 1, 5, 7)).not.toBe(a);
    expect(reservationId({ jobKey: 'a/b#1', owner: 'o2' }, 1, 5, 7)).not.toBe(a);
  });
});

describe('the attempt ledger, on in-memory state', () => {
  it('hands the early reservation to the first reserve, and settles the rest of it back', async () => {
    const state = await withRun(10_000);
    const ledger = new AttemptLedger(state, { runId: 'r', jobKey: 'a/b#1', owner: 'o' }, () => 1);
    ledger.reserveEarly(4000);
    const reservation = await ledger.reserve(3000);
    expect(reservation.amountMicros).toBe(4000);
    await reservation.settle(2500);
    await reservation.settle(2500); // twice counts once
    expect(ledger.closeAttempt()).toBe(2500);
    await ledger.flushed();
    expect(await state.getRun('r')).toMatchObject({
      spentMicros: 2500,
      reservedMicros: 0,
      availableMicros: 7500,
    });
    expect(state.calls.filter((c) => c === 'reserve')).toHaveLength(1);
  });

  it('charges what an attempt left open at its whole amount when it closes', async () => {
    const state = await withRun(10_000);
    const ledger = new AttemptLedger(state, { runId: 'r', jobKey: 'a/b#1', owner: 'o' }, () => 1);
    await ledger.reserve(6000);
    expect(ledger.closeAttempt()).toBe(6000);
    expect(await ledger.confirmedMicros()).toBe(6000);
  });

  it('refuses with BUDGET_EXHAUSTED only when nothing reserved could come back', async () => {
    const state = await withRun(5000);
    const ledger = new AttemptLedger(state, { runId: 'r', jobKey: 'a/b#1', owner: 'o' }, () => 1);
    await expect(ledger.reserve(6000)).rejects.toMatchObject({ code: 'BUDGET_EXHAUSTED' });
  });

  it('waits for another job to settle rather than give up on money that may come back', async () => {
    const state = await withRun(5000);
    const other = new AttemptLedger(state, { runId: 'r', jobKey: 'a/b#2', owner: 'p' }, () => 1);
    const held = await other.reserve(4000);
    const ledger = new AttemptLedger(state, { runId: 'r', jobKey: 'a/b#1', owner: 'o' }, () => 1);
    const waiting = ledger.reserve(3000);
    await held.settle(1000);
    await other.flushed();
    expect((await waiting).amountMicros).toBe(3000);
  });

  it('closes what a crashed attempt left open, as abandoned, and leaves a young reservation alone', async () => {
    const state = await withRun(10_000);
    const dead = { jobKey: 'a/b#1', owner: 'dead' };
    await state.reserve('r', reservationId(dead, 1, 2000, 1000), 2000);
    await state.reserve('r', reservationId(dead, 2, 1000, 9500), 1000);
    const lease = { runId: 'r', jobKey: 'a/b#1', owner: 'new', fence: 2 };
    expect(await reclaimAbandoned(state, lease, 10_000, 5000, silent)).toBe(2000);
    expect(await state.getRun('r')).toMatchObject({ abandonedMicros: 2000, reservedMicros: 1000 });
  });
});

describe('the lease keeper, on in-memory state', () => {
  it('proves a lease renewed less than half a lease ago without a round trip, and refuses one taken over', async () => {
    const state = new MemoryState();
    const answer = await state.acquireLease('r', 'a/b#1', { owner: 'o', worker: 'w' }, 0, 10_000);
    if (answer.kind !== 'acquired') throw new Error('not acquired');
    const lease = { runId: 'r', jobKey: 'a/b#1', owner: 'o', fence: answer.fence };
    const keeper = new LeaseKeeper(lease, state, () => 0, 10_000, performance.now());
    await keeper.prove();
    expect(state.calls.filter((c) => c === 'renewLease')).toHaveLength(0);

    // Paused past half a lease, and meanwhile another worker took the job.
    const paused = new LeaseKeeper(lease, state, () => 20_000, 10_000, performance.now() - 6000);
    await state.acquireLease('r', 'a/b#1', { owner: 'other', worker: 'w2' }, 20_000, 10_000);
    await expect(paused.prove()).rejects.toEqual(expect.any(FanoutError));
    await expect(paused.prove()).rejects.toMatchObject({ code: 'LEASE_LOST' });
  });
});

describe('the slot keeper, on in-memory state', () => {
  it('takes a free slot of N for an invocation, and a named slot for a process even while a dead holder has it', async () => {
    const state = new MemoryState();
    const first = await holdSlot(state, { owner: 'a', leaseMs: 1000, clock: () => 0, slot: { count: 2 } });
    const second = await holdSlot(state, { owner: 'b', leaseMs: 1000, clock: () => 0, slot: { count: 2 } });
    const none = await holdSlot(state, { owner: 'c', leaseMs: 1000, clock: () => 0, slot: { count: 2 } });
    expect([first?.workerId, second?.workerId, none]).toEqual(['worker-01', 'worker-02', undefined]);
    await first?.release();
    expect((await state.listSlots()).find((s) => s.workerId === 'worker-01')?.owner).toBeUndefined();

    const named = await holdSlot(state, {
      owner: 'p',
      leaseMs: 1000,
      clock: () => 0,
      slot: { name: 'worker-02' },
    });
    expect(named?.workerId).toBe('worker-02');
    await named?.release();
  });
});
