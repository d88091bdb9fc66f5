import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../cli/format.js';
import { buildStatus } from '../../shared/domain/status.js';
import type { JobRecord, RunRecord } from '../../shared/ports/state.js';

const run: RunRecord = {
  runId: 'r',
  budgetMicros: 1_000_000,
  spentMicros: 0,
  abandonedMicros: 0,
  reservedMicros: 0,
  openReservations: 0,
  consistent: true,
  availableMicros: 1_000_000,
  jobCount: 3,
  createdAt: 0,
};
const now = 100_000;
const job = (n: number, status: JobRecord['status'], extra: Partial<JobRecord> = {}): JobRecord => ({
  runId: 'r',
  jobKey: `acme/api#${n}`,
  title: 't',
  status,
  fence: 1,
  attempts: 1,
  costMicros: 0,
  worker: 'worker-01',
  startedAt: 1000 * n,
  ...extra,
});
const jobs = [
  job(1, 'DONE', { finishedAt: 50_000 }),
  job(2, 'RUNNING', { leaseUntil: now + 20_000, worker: 'worker-02' }),
  job(3, 'PENDING'),
];
const slots = [{ workerId: 'worker-02', owner: 'w/1', leaseUntil: now + 20_000, heartbeatAt: now - 1000 }];
const queue = { visible: 1, inFlight: 1, deadLetters: 0 };

describe('status of a run no fleet works on', () => {
  it('shows a live run busy, with an ETA', () => {
    const s = buildStatus({ run, jobs, slots, queue, now });
    expect(s.workers.find((w) => w.workerId === 'worker-02')?.state).toBe('busy');
    expect(s.etaMs).toBeGreaterThan(0);
  });

  it('shows a killed local run as not running: no busy workers, no ETA, and how to resume it', () => {
    const s = buildStatus({ run, jobs, slots, queue, now, running: false });
    expect(s.workers.map((w) => w.state)).toEqual(['stopped', 'stopped']);
    expect(s.etaMs).toBeUndefined();
    expect(formatStatus(s)).toMatch(/^Run r: 3 jobs \(not running: `fanout run` resumes it\)/);
  });
});

describe('status by priority', () => {
  it('counts the waiting, running and finished jobs of each priority, and shows them when any is not normal', () => {
    const mixed = [
      ...jobs,
      job(4, 'PENDING', { priority: 'high' }),
      job(5, 'RUNNING', { priority: 'high', leaseUntil: now + 20_000 }),
      job(6, 'PENDING', { priority: 'low' }),
      job(7, 'DONE', { priority: 'low', finishedAt: 60_000 }),
    ];
    const s = buildStatus({ run, jobs: mixed, slots, queue, now });
    expect(s.priorities).toEqual([
      { priority: 'high', jobs: 2, waiting: 1, running: 1, finished: 0 },
      { priority: 'normal', jobs: 3, waiting: 1, running: 1, finished: 1 },
      { priority: 'low', jobs: 2, waiting: 1, running: 0, finished: 1 },
    ]);
    expect(formatStatus(s)).toMatch(
      /priority\s+jobs\s+waiting\s+running\s+finished\n.*\nhigh\s+2\s+1\s+1\s+0/,
    );
    // All normal: the table would say nothing the totals do not.
    expect(formatStatus(buildStatus({ run, jobs, slots, queue, now }))).not.toMatch(/priority/);
  });
});
