import { describe, expect, it } from 'vitest';
import { simulateLedgerLoad } from '../../cli/ledger-sim.js';

const fleet = (workers: number) =>
  simulateLedgerLoad({ workers, callEveryMs: 5000, callMs: 4000, callsPerJob: 6, durationMs: 60_000 });

describe("the ledger's load at fleet scale (virtual clock)", () => {
  it('counts two writes a call on the one run item', () => {
    // 10 workers, a call every 5 s: 2 calls/s, reserve + settle = 4 writes/s.
    expect(fleet(10).writesPerSecond).toBeCloseTo(4, 0);
  });

  it('grows the run item with the open reservations, and bills each write by its size', () => {
    const small = fleet(10);
    const large = fleet(1000);
    // A call open 4 s of every 5: about 800 ids of about 70 bytes in the item at 1,000 workers.
    expect(large.peakItemBytes).toBeGreaterThan(800 * 60);
    expect(large.peakItemBytes).toBeLessThan(1000 * 90);
    expect(small.peakUnitsPerSecond).toBeLessThan(10);
    // Each of ~400 writes a second costs ~55 units: far over one item's 1,000 units a second.
    expect(large.peakUnitsPerSecond).toBeGreaterThan(10_000);
  });
});
