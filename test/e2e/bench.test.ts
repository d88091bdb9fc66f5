import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchCommand } from '../../cli/bench-command.js';

describe('fanout bench --quick (as CI runs it: figures printed, not held to wall-clock limits)', () => {
  it('measures every section, writes results.json and the page, and every job ran once', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fanout-bench-out-'));
    const lines: string[] = [];
    expect(await benchCommand(['--quick', '--out', out], (line) => lines.push(line))).toBe(0);
    process.stdout.write(`${lines.join('\n')}\n`);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(results.speedup.map((s: { workers: number }) => s.workers)).toEqual([1, 2, 5]);
    for (const s of results.speedup) {
      expect(s.efficiency).toBeGreaterThan(0);
      expect(s.efficiency).toBeLessThanOrEqual(1);
    }
    // The lifecycle's calls, counted: lease, reservation, settlement, outcome; one workspace write.
    expect(results.overhead.callsPerJob).toEqual({ state: 4, workspace: 1, queue: 0 });
    expect(results.scale[0]).toMatchObject({ jobs: 300, done: 300, once: true });
    expect(results.aws.per1000JobsUsd).toBeGreaterThan(0);
    expect(results.aws.maxJobsPerSecond).toBe(500);
    // The ledger at 10, 100 and 1,000 workers: before, one item growing with the open
    // reservations; now 32 shard items, each under 4 KB and 300 write units a second.
    type Load = { workers: number; design: string; peakItemBytes: number; peakUnitsPerSecond: number };
    const loads = results.ledger as Load[];
    expect(loads.map((l) => `${l.design} ${l.workers}`)).toEqual(
      ['single-item', 'sharded'].flatMap((d) => [10, 100, 1000].map((w) => `${d} ${w}`)),
    );
    expect(loads[2]?.peakItemBytes).toBeGreaterThan((loads[0]?.peakItemBytes ?? 0) * 50);
    expect(loads[5]?.peakItemBytes).toBeLessThan(4096);
    expect(loads[5]?.peakUnitsPerSecond).toBeLessThan(300);
    // The engine race: within the budget, nothing left open, every micro-dollar accounted for.
    const race = results.ledgerRace;
    expect(race.violations).toEqual([]);
    expect(race.final.open).toBe(0);
    expect(race.final.spentMicros + race.final.abandonedMicros).toBe(
      race.jobsMicros + race.deadSettledMicros,
    );
    // The built command line, timed from outside: a throughput, a start, and each worker's memory.
    const local = results.localSpeed;
    expect(local.zero[0]).toMatchObject({ jobs: 100, workers: 1 });
    expect(local.zero[0].jobsPerSecond[0]).toBeGreaterThan(0);
    expect(local.firstStartedMs[0]).toBeGreaterThan(0);
    expect(local.fleet.workers).toBe(10);
    if (process.platform === 'linux') expect(local.fleet.workerPrivateMb).toBeGreaterThan(0);
    // Fair share: the small repository's jobs start among the first of the run, not after
    // the big one's 60 (an order, not a time: the queue gives the repositories turns).
    expect(results.fairness.smallLastStart).toBeGreaterThan(0);
    expect(results.fairness.smallLastStart).toBeLessThan(35);
    // Ten high jobs sent after the normal backlog are the first to start (a worker may hold one normal job).
    expect(results.fairness.highLastStart).toBeGreaterThanOrEqual(10);
    expect(results.fairness.highLastStart).toBeLessThanOrEqual(15);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toMatch(/<svg[\s\S]*speedup[\s\S]*efficiency/);
  }, 240_000);
});
