import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report-command.js';
import { planFor } from '../../shared/agents/simulate.js';
import type { AgentConfig } from '../../shared/domain/agent-settings.js';
import { mockIssues } from '../../shared/domain/job.js';
import { sendIssues } from '../../shared/domain/send.js';
import type { Dispatcher } from '../../shared/local/dispatcher.js';
import { type LocalRunOptions, runLocal } from '../../shared/local/local-run.js';
import { openStateDir } from '../../shared/local/state-dir.js';

const simulate = (overrides: Partial<Extract<AgentConfig, { kind: 'simulate' }>> = {}): AgentConfig => ({
  kind: 'simulate',
  durationMs: { min: 50, max: 50 },
  failRate: 0,
  costMicros: { min: 10_000, max: 10_000 },
  seed: 42,
  ...overrides,
});

async function options(overrides: Partial<LocalRunOptions>): Promise<LocalRunOptions> {
  return {
    stateDir: await mkdtemp(join(tmpdir(), 'fanout-e2e-')),
    workers: 3,
    batchSize: 1,
    timeoutMs: 30_000,
    maxReceiveCount: 3,
    budgetMicros: 10_000_000,
    issues: mockIssues(12),
    agent: simulate(),
    ...overrides,
  };
}

const read = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

describe('fanout run on this machine', () => {
  it('runs 12 jobs on 3 worker processes, each once, each in its own workspace', async () => {
    const opts = await options({});
    const report = await runLocal(opts);

    expect(report.complete).toBe(true);
    expect(report.totals).toMatchObject({ jobs: 12, DONE: 12, FAILED: 0 });
    expect(report.jobs.every((job) => job.attempts === 1)).toBe(true);
    const perWorker = new Map<string, number>();
    for (const job of report.jobs)
      perWorker.set(job.worker ?? '?', (perWorker.get(job.worker ?? '?') ?? 0) + 1);
    expect([...perWorker.keys()].every((w) => /^worker-0[1-3]$/.test(w))).toBe(true);
    expect([...perWorker.values()].reduce((a, b) => a + b, 0)).toBe(12);
    for (let n = 1; n <= 12; n++) {
      const result = read(
        join(opts.stateDir, 'workspaces/runs', report.runId, `jobs/mock/backlog/${n}/result.json`),
      );
      expect(result.jobKey).toBe(`mock/backlog#${n}`);
    }
    expect(report.costUsd).toMatchObject({ spent: 0.12, reserved: 0, abandoned: 0 });
    expect(read(join(opts.stateDir, 'runs', report.runId, 'report.json')).totals.DONE).toBe(12);
  });

  it('reports exactly the jobs the simulate agent fails as FAILED, each in the dead-letter queue', async () => {
    const agent = simulate({ failRate: 0.25, seed: 3 });
    const report = await runLocal(await options({ agent, issues: mockIssues(20), workers: 4 }));
    if (agent.kind !== 'simulate') throw new Error('simulate');
    const planned = mockIssues(20)
      .map((issue) => `${issue.repo}#${issue.number}`)
      .filter((key) => planFor(key, agent).fails);
    expect(planned.length).toBeGreaterThan(0);
    const failed = report.jobs.filter((job) => job.status === 'FAILED');
    expect(failed.map((job) => job.jobKey).sort()).toEqual([...planned].sort());
    expect(failed.every((job) => job.errorCode === 'AGENT_FAILED')).toBe(true);
    expect(report.totals.DONE).toBe(20 - planned.length);
    expect(report.deadLetters.map((d) => d.jobKey).sort()).toEqual([...planned].sort());
  });

  it('loses nothing when a worker process is killed mid-job: the job completes on a retry', async () => {
    let dispatcher: Dispatcher | undefined;
    let killed: string | undefined;
    const report = await runLocal(
      await options({
        workers: 2,
        issues: mockIssues(4),
        timeoutMs: 2000,
        agent: simulate({ durationMs: { min: 800, max: 800 } }),
        onDispatcher: (d) => {
          dispatcher = d;
        },
        onEvent: (event) => {
          if (
            !killed &&
            event.type === 'worker' &&
            event.event.type === 'started' &&
            event.workerId === 'worker-01'
          ) {
            killed = event.event.jobKey;
            // Kill it well inside its 800 ms of work: after its reservation, before its outcome.
            const pid = dispatcher?.pids()['worker-01'] ?? 0;
            setTimeout(() => process.kill(pid, 'SIGKILL'), 300);
          }
        },
      }),
    );
    expect(killed).toBeDefined();
    expect(report.totals).toMatchObject({ jobs: 4, DONE: 4 });
    expect(report.jobs.find((job) => job.jobKey === killed)?.attempts).toBe(2);
    // Every finished job's cost is counted once; the killed attempt's open reservation is charged as abandoned.
    expect(report.costUsd).toMatchObject({ spent: 0.04, abandoned: 0.01, reserved: 0 });
  });

  it("gives a dead worker's job back at once: the lease, not the 20 s visibility timeout, decides when it runs again", async () => {
    let dispatcher: Dispatcher | undefined;
    let killedAt = 0;
    const report = await runLocal(
      await options({
        workers: 1,
        issues: mockIssues(1),
        timeoutMs: 20_000,
        leaseMs: 1000,
        agent: simulate({ durationMs: { min: 800, max: 800 } }),
        onDispatcher: (d) => {
          dispatcher = d;
        },
        onEvent: (event) => {
          if (!killedAt && event.type === 'worker' && event.event.type === 'started') {
            killedAt = Date.now() + 300;
            const pid = dispatcher?.pids()['worker-01'] ?? 0;
            setTimeout(() => process.kill(pid, 'SIGKILL'), 300);
          }
        },
      }),
    );
    expect(report.totals).toMatchObject({ jobs: 1, DONE: 1 });
    expect(report.jobs[0]?.attempts).toBe(2);
    // Back on the queue at once, deferred only until the dead worker's 1 s lease ended: well
    // inside the 20 s a message whose worker is not known dead waits to be delivered again.
    expect(Date.now() - killedAt).toBeLessThan(15_000);
  });

  it('stops on request, returns running jobs to the queue, and the next run finishes with nothing doubled', async () => {
    const opts = await options({
      workers: 2,
      issues: mockIssues(6),
      agent: simulate({ durationMs: { min: 300, max: 300 } }),
    });
    let dispatcher: Dispatcher | undefined;
    const first = await runLocal({
      ...opts,
      onDispatcher: (d) => {
        dispatcher = d;
      },
      onEvent: (event) => {
        if (event.type === 'worker' && event.event.type === 'finished') dispatcher?.stop(true);
      },
    });
    expect(first.complete).toBe(false);
    expect(first.totals.DONE).toBeGreaterThan(0);
    expect(first.totals.DONE).toBeLessThan(6);
    expect(first.costUsd.reserved).toBe(0);

    const second = await runLocal(opts);
    expect(second.runId).toBe(first.runId);
    expect(second.complete).toBe(true);
    expect(second.totals).toMatchObject({ jobs: 6, DONE: 6 });
    expect(second.costUsd).toMatchObject({ spent: 0.06, reserved: 0, abandoned: 0 });
    expect(existsSync(join(opts.stateDir, 'runs', first.runId, 'report.json'))).toBe(true);
  });

  it('measures efficiency on what this run did: skipped jobs and other runs do not count as its work', async () => {
    const opts = await options({
      workers: 2,
      issues: mockIssues(4),
      // Budget for 3 jobs of 10,000: the 4th is SKIPPED and does no work.
      budgetMicros: 30_000,
      agent: simulate({ durationMs: { min: 300, max: 300 } }),
    });
    // Another run's 2 jobs wait on the same queue: the same workers drain them too.
    const local = await openStateDir(opts.stateDir, { create: true, command: 'send' });
    await sendIssues(
      mockIssues(2).map((issue) => ({ ...issue, repo: 'other/backlog' })),
      { runId: 'other', budgetMicros: 1_000_000 },
      { state: local.state, queue: local.queue, workspaces: local.workspaces, clock: Date.now },
    );
    await local.close();

    const report = await runLocal({ ...opts, runId: 'eff' });
    expect(report.totals).toMatchObject({ DONE: 3, SKIPPED: 1 });
    // Three jobs of 300 ms did work; the skipped one and the other run's two are not this run's.
    expect(report.timing.serialMs).toBe(900);
    expect(report.timing.idealMs).toBe(600);
    expect(report.timing.efficiency).toBeLessThanOrEqual(1);
    expect(report.timing.caveat).toMatch(/the workers also worked 2 jobs of other runs in this wall time/);

    // `fanout report` says what the run's own report says.
    const printed: string[] = [];
    await reportCommand(['--state-dir', opts.stateDir, '--run-id', 'eff', '--json'], {
      out: (t) => printed.push(t),
    });
    expect(JSON.parse(printed[0] as string).timing).toEqual(report.timing);
  });
});
