import { describe, expect, it } from 'vitest';
import { LLM_FLEET, simulateLedgerLoad } from '../../cli/ledger-sim.js';
import { MAX_OPEN_PER_SHARD, RESERVATION_ID_MAX_BYTES } from '../../shared/adapters/dynamo/schema.js';

const fleet = (workers: number, design: 'single-item' | 'sharded' = 'single-item') =>
  simulateLedgerLoad({ workers, design, ...LLM_FLEET });

describe("the ledger's load at fleet scale (virtual clock)", () => {
  it('counts two writes a call on the one run item (the ledger before #13)', () => {
    // 10 workers, a call every 5 s: 2 calls/s, reserve + settle = 4 writes/s.
    expect(fleet(10).writesPerSecond).toBeCloseTo(4, 0);
  });

  it('grew the one run item with the open reservations, and billed each write by its size', () => {
    const small = fleet(10);
    const large = fleet(1000);
    // A call open 4 s of every 5: about 800 ids of about 70 bytes in the item at 1,000 workers.
    expect(large.peakItemBytes).toBeGreaterThan(800 * 60);
    expect(large.peakItemBytes).toBeLessThan(1000 * 90);
    expect(small.peakUnitsPerSecond).toBeLessThan(10);
    // Each of ~400 writes a second costs ~55 units: far over one item's 1,000 units a second.
    expect(large.peakUnitsPerSecond).toBeGreaterThan(10_000);
  });

  it('keeps every sharded item under 4 KB and the busiest under 300 units a second at 1,000 workers', () => {
    const large = fleet(1000, 'sharded');
    expect(large.peakItemBytes).toBeLessThan(4096);
    expect(large.peakUnitsPerSecond).toBeLessThan(300);
    // 400 writes a second over 32 shards, and refills of the pool now and then.
    expect(large.writesPerSecond).toBeLessThan(20);
    expect(large.poolWritesPerSecond).toBeLessThan(5);
  });

  it('bounds a shard item whatever the fleet: it holds at most MAX_OPEN_PER_SHARD ids', () => {
    // The bound the adapter enforces, with the counters, keys and TTL (about 220 bytes).
    expect(MAX_OPEN_PER_SHARD * RESERVATION_ID_MAX_BYTES + 220).toBeLessThan(4096);
    // Twice the largest fleet: about 1,600 open ids over 32 shards, 50 a shard, under the cap.
    expect(fleet(2000, 'sharded').peakItemBytes).toBeLessThan(4096);
  });
});
