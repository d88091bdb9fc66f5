import { describe, expect, it } from 'vitest';
import { formatCsv, formatReport } from '../../cli/format.js';
import { buildReport, idealMakespan } from '../../shared/domain/report.js';
import type { JobRecord, RunRecord } from '../../shared/ports/state.js';

describe('ideal makespan', () => {
  it('is ceil(jobs / workers) x duration for equal jobs', () => {
    const ten = new Array(10).fill(1000);
    expect(idealMakespan(ten, 1)).toBe(10_000);
    expect(idealMakespan(ten, 2)).toBe(5000);
    expect(idealMakespan(ten, 3)).toBe(4000);
    expect(idealMakespan(ten, 5)).toBe(2000);
    expect(idealMakespan(ten, 10)).toBe(1000);
  });

  it('is never shorter than the longest job', () => {
    expect(idealMakespan([5000, 100, 100], 3)).toBe(5000);
  });
});

/** A run record with nothing spent: what a report's figures do not depend on. */
const quietRun = (budgetMicros: number, jobCount: number): RunRecord => ({
  runId: 'r',
  budgetMicros,
  spentMicros: 0,
  abandonedMicros: 0,
  reservedMicros: 0,
  openReservations: 0,
  consistent: true,
  availableMicros: 0,
  jobCount,
  createdAt: 0,
});

describe('run report', () => {
  it('counts outcomes and measures speedup and efficiency against the ideal', () => {
    const job = (n: number, status: JobRecord['status']): JobRecord => ({
      runId: 'r',
      jobKey: `a/b#${n}`,
      title: 't',
      status,
      fence: 1,
      attempts: 1,
      costMicros: 10_000,
      durationMs: 1000,
      worker: 'worker-01',
    });
    const report = buildReport({
      run: {
        runId: 'r',
        budgetMicros: 1_000_000,
        spentMicros: 30_000,
        abandonedMicros: 0,
        reservedMicros: 0,
        openReservations: 0,
        consistent: true,
        availableMicros: 970_000,
        jobCount: 4,
        createdAt: 0,
      },
      jobs: [job(1, 'DONE'), job(2, 'DONE'), job(3, 'FAILED'), job(4, 'PENDING')],
      deadLetters: [],
      workers: 2,
      wallMs: 2500,
      startupMs: 800,
      sessionWorkMs: [1000, 1000, 1000, 1000],
    });
    expect(report.totals).toMatchObject({ DONE: 2, FAILED: 1, PENDING: 1, jobs: 4 });
    expect(report.complete).toBe(false);
    expect(report.timing.idealMs).toBe(2000);
    expect(report.timing.efficiency).toBeCloseTo(0.8);
    expect(report.timing.speedup).toBeCloseTo(1.6);
  });

  it('counts each repository apart: outcomes and cost, and prints them when there are several', () => {
    const job = (key: string, status: JobRecord['status'], costMicros: number): JobRecord => ({
      runId: 'r',
      jobKey: key,
      title: 't',
      status,
      fence: 1,
      attempts: 1,
      costMicros,
      worker: 'worker-01',
    });
    const run = quietRun(1_000_000, 5);
    const report = buildReport({
      run,
      jobs: [
        job('b/web#7', 'DONE', 30_000),
        job('a/api#7', 'DONE', 10_000),
        job('a/api#8', 'FAILED', 5_000),
        job('a/api#9', 'SKIPPED', 0),
        job('b/web#8', 'RUNNING', 2_000),
      ],
      deadLetters: [],
      workers: 1,
      wallMs: 0,
      startupMs: 0,
      sessionWorkMs: [],
    });
    expect(report.repositories).toEqual([
      { repo: 'a/api', jobs: 3, done: 1, failed: 1, skipped: 1, waiting: 0, running: 0, costUsd: 0.015 },
      { repo: 'b/web', jobs: 2, done: 1, failed: 0, skipped: 0, waiting: 0, running: 1, costUsd: 0.032 },
    ]);
    expect(formatReport(report)).toMatch(
      /repository\s+jobs\s+done\s+failed\s+skipped\s+waiting\s+running\s+cost/,
    );
    expect(formatReport(report)).toMatch(/b\/web\s+2\s+1\s+0\s+0\s+0\s+1\s+\$0\.0320/);
    // One repository: the totals say it all, no table.
    const single = buildReport({
      ...{ run, deadLetters: [], workers: 1, wallMs: 0, startupMs: 0, sessionWorkMs: [] },
      jobs: [job('a/api#7', 'DONE', 1)],
    });
    expect(formatReport(single)).not.toMatch(/repository/);
  });

  it('writes CSV a spreadsheet cannot run: cells that begin like a formula are text, with the error message', () => {
    const report = buildReport({
      run: quietRun(0, 1),
      jobs: [
        {
          runId: 'r',
          jobKey: 'acme/api#1',
          title: '=HYPERLINK("http://evil","click")',
          status: 'FAILED',
          fence: 1,
          attempts: 1,
          costMicros: 0,
          errorCode: 'AGENT_FAILED',
          errorMessage: '@SUM(A1), the agent broke',
        },
      ],
      deadLetters: [],
      workers: 1,
      wallMs: 0,
      startupMs: 0,
      sessionWorkMs: [],
    });
    const [header, row] = formatCsv(report).trim().split('\n');
    expect(header).toContain('error_code,error_message');
    expect(row).toContain(`"'=HYPERLINK(""http://evil"",""click"")"`);
    expect(row).toContain(`"'@SUM(A1), the agent broke"`);
  });
});
