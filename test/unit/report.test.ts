import { describe, expect, it } from 'vitest';
import { formatCsv } from '../../cli/format.js';
import { buildReport, idealMakespan } from '../../shared/domain/report.js';
import type { JobRecord } from '../../shared/ports/state.js';

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

  it('writes CSV a spreadsheet cannot run: cells that begin like a formula are text, with the error message', () => {
    const report = buildReport({
      run: {
        runId: 'r',
        budgetMicros: 0,
        spentMicros: 0,
        abandonedMicros: 0,
        reservedMicros: 0,
        openReservations: 0,
        consistent: true,
        availableMicros: 0,
        jobCount: 1,
        createdAt: 0,
      },
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
