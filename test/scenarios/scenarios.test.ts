import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { S3WorkspaceStore } from '../../shared/adapters/s3-workspace.js';
import { simulateAgent } from '../../shared/agents/simulate.js';
import { FanoutError } from '../../shared/domain/errors.js';
import { seededRandom } from '../../shared/domain/random.js';
import type { WorkerEvent } from '../../shared/domain/worker.js';
import type { Agent } from '../../shared/ports/agent.js';
import { startS3 } from '../support/aws-engines.js';
import { savedReport } from '../support/cli.js';
import { withFaults } from '../support/faults.js';
import { throttlingFront } from '../support/throttling-front.js';
import {
  audit,
  countingAgent,
  harness,
  issues,
  percentile,
  REPEAT,
  record,
  repeated,
  scenarioSeed,
} from './harness.js';

/** Each run of a scenario has a minute; repeated, each has as many. */
const TIMEOUT = 60_000 * REPEAT;

const ROOT = join(import.meta.dirname, '../..');
const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

describe('scenarios: the invariants under fire', () => {
  it(
    '1 duplicates: every issue sent 3 times is worked exactly once',
    repeated('1 duplicates', async () => {
      const h = await harness({ leaseMs: 1000 });
      try {
        await h.send(issues(20), 3);
        const { agent, runs } = countingAgent();
        await h.drain({ workers: 4, agent });
        const jobs = await h.state.listJobs(h.runId);
        expect(jobs.every((j) => j.status === 'DONE')).toBe(true);
        expect([...runs.values()].every((n) => n === 1)).toBe(true);
        expect(runs.size).toBe(20);
        expect((await h.state.getRun(h.runId))?.spentMicros).toBe(20 * 1000);
        record(
          '1 duplicates',
          `60 deliveries of 20 jobs -> ${[...runs.values()].reduce((a, b) => a + b, 0)} runs, 20 DONE`,
          await audit(h, runs),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '2 redelivery while running: the second delivery is deferred, not run',
    repeated('2 redelivery while running', async () => {
      const h = await harness({ leaseMs: 1000 });
      try {
        await h.send(issues(1), 2);
        const { agent, runs } = countingAgent({ workMs: 400 });
        let deferred = 0;
        const onEvent = (event: WorkerEvent) => {
          if (event.type === 'deferred') deferred++;
        };
        const { responses } = await h.drain({ workers: 2, agent, deps: () => ({ onEvent }) });
        expect(runs.get('acme/api#1')).toBe(1);
        expect(deferred).toBeGreaterThanOrEqual(1);
        // Handed back as a new delayed message: no delivery came back spending a receive.
        expect(responses.every((r) => r.batchItemFailures.length === 0)).toBe(true);
        const [job] = await h.state.listJobs(h.runId);
        expect(job).toMatchObject({ status: 'DONE', attempts: 1 });
        record(
          '2 redelivery while running',
          `2nd delivery deferred ${deferred}x (a new message, delayed until the lease ends), agent ran 1x`,
          await audit(h, runs),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '3 crash: a worker killed at a random point, 20 times, still gives each job DONE once, its cost counted once',
    repeated('3 crash (20 kills)', async () => {
      const h = await harness({ visibilityTimeoutMs: 300, leaseMs: 300, maxReceiveCount: 10 });
      try {
        await h.send(issues(20));
        const random = seededRandom(scenarioSeed(3), 'kills');
        const killed: string[][] = [];
        const killedJobs = new Set<string>();
        const { agent } = countingAgent({ workMs: 20, costMicros: 1000 });
        const { crashed } = await h.drain({
          workers: 4,
          agent,
          invocationMs: 1500,
          // Each job's first invocation dies at a random one of its 4 state calls (reserve, lease, settle, outcome).
          state: (_invocation, records) => {
            const body = records[0]?.body ?? '';
            if (killedJobs.has(body)) return h.state;
            killedJobs.add(body);
            const executed: string[] = [];
            killed.push(executed);
            return withFaults(
              h.state,
              [{ at: 1 + Math.floor(random() * 4), fault: { action: 'kill' } }],
              executed,
            );
          },
        });
        const jobs = await h.state.listJobs(h.runId);
        const run = await h.state.getRun(h.runId);
        expect(crashed).toBe(20);
        expect(jobs.map((j) => j.status)).toEqual(new Array(20).fill('DONE'));
        const jobCosts = jobs.reduce((sum, j) => sum + j.costMicros, 0);
        expect(jobCosts).toBe(20 * 1000);
        // What the killed attempts got into the ledger before they died: a settlement is
        // spend that really happened; a reservation left open is charged once, as abandoned.
        const settledByDead = killed.filter((calls) => calls.includes('settle')).length;
        const leftOpen = killed.filter(
          (calls) => calls.includes('reserve') && !calls.includes('settle'),
        ).length;
        expect(run).toMatchObject({
          spentMicros: jobCosts + 1000 * settledByDead,
          abandonedMicros: 1000 * leftOpen,
          reservedMicros: 0,
          openReservations: 0,
          consistent: true,
        });
        for (const job of jobs) {
          const files = await h.workspaces
            .open(`runs/${h.runId}/jobs/acme/api/${job.jobKey.split('#')[1]}/`)
            .list();
          expect(files).toEqual(['result.txt']);
        }
        record(
          '3 crash (20 kills)',
          `20/20 DONE once; ledger: ${jobCosts / 1000} job costs + ${settledByDead} spent by the dead, ${leftOpen} abandoned, 0 reserved`,
          await audit(h),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '4 stale worker: a worker paused past its lease cannot write its result, its files or its cost',
    repeated('4 stale worker', async () => {
      const h = await harness({ leaseMs: 300, visibilityTimeoutMs: 200 });
      try {
        await h.send(issues(1));
        let resume: () => void = () => {};
        const paused = new Promise<void>((resolve) => {
          resume = resolve;
        });
        let staleError: unknown;
        let runs = 0;
        const agent: Agent = {
          name: 'pausing',
          firstReservationMicros: () => 1000,
          async run(_job, workspace, context) {
            const reservation = await context.spend.reserve(1000);
            if (++runs === 1) {
              await paused; // the first worker stops here, past its lease (it cannot heartbeat)
              try {
                await workspace.write('stale.txt', 'from the stale worker');
              } catch (error) {
                staleError = error;
                throw error;
              }
            }
            await workspace.write('fresh.txt', 'from the lease holder');
            await reservation.settle(700);
            if (runs === 2) resume();
            return { summary: 'done' };
          },
        };
        const { responses } = await h.drain({
          workers: 2,
          agent,
          deps: (invocation) => (invocation === 1 ? { heartbeatMs: 3_600_000 } : {}),
        });
        const [job] = await h.state.listJobs(h.runId);
        const run = await h.state.getRun(h.runId);
        expect(staleError).toBeInstanceOf(FanoutError);
        expect((staleError as FanoutError).code).toBe('LEASE_LOST');
        expect(job).toMatchObject({ status: 'DONE', worker: 'worker-02', costMicros: 700 });
        expect(await h.workspaces.open(`runs/${h.runId}/jobs/acme/api/1/`).list()).toEqual(['fresh.txt']);
        // The stale worker's reservation was closed once by the holder, as abandoned; its own settle found it closed.
        expect(run).toMatchObject({ spentMicros: 700, abandonedMicros: 1000, reservedMicros: 0 });
        expect(responses.some((r) => r.batchItemFailures.length > 0)).toBe(true);
        record(
          '4 stale worker',
          'result, file and cost of the paused worker refused; holder DONE, abandoned $0.001 once',
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '5 poison: 5% malformed among 200 fail alone, once each, into the DLQ with a reason',
    repeated('5 poison', async () => {
      const h = await harness({});
      try {
        const all = issues(190);
        await h.send(all);
        const poison = Array.from({ length: 10 }, (_, i) =>
          i % 2 ? `{"v":1,"runId":"${h.runId}"}` : `not json ${i}`,
        );
        for (const body of poison) await h.queue.send([{ id: 'poison', body }]);
        const { agent } = countingAgent({ workMs: 1 });
        const started = Date.now();
        const { invocations } = await h.drain({ workers: 8, agent });
        const jobs = await h.state.listJobs(h.runId);
        expect(jobs.filter((j) => j.status === 'DONE')).toHaveLength(190);
        const dead = h.queue.deadLetters();
        expect(dead).toHaveLength(10);
        expect(
          dead.every((d) => d.code === 'INVALID_MESSAGE' && d.receiveCount === 1 && d.reason.length > 10),
        ).toBe(true);
        expect(invocations).toBe(200);
        record(
          '5 poison',
          `10 of 200 in the DLQ after 1 attempt each, 190/190 DONE, ${invocations} invocations, ${Date.now() - started}ms`,
          await audit(h),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '6 throttling: 30% of state calls throttled, every job DONE once, nothing counted twice',
    repeated('6 throttling (30%)', async () => {
      let front: Awaited<ReturnType<typeof throttlingFront>> | undefined;
      const random = seededRandom(scenarioSeed(6), 'throttle');
      // The SDK backs a throttled call off exponentially from 500 ms, up to 20 s a retry: with
      // 12 attempts one call can wait minutes. The lease and the visibility timeout are the
      // stack's defaults (60 s; minutes), not the other scenarios' short ones: with a 30 s
      // visibility timeout a call backed off that long let a second delivery take the job
      // over (1 run in about 50), which is at-least-once working, not what this scenario is about.
      const h = await harness({
        maxAttempts: 12,
        leaseMs: 60_000,
        visibilityTimeoutMs: 900_000,
        endpoint: async (engine) => {
          front = await throttlingFront(engine, () => random() < 0.3);
          return front.endpoint;
        },
      });
      try {
        await h.send(issues(16));
        const { agent, runs } = countingAgent({ workMs: 2, costMicros: 1000 });
        await h.drain({ workers: 4, agent, invocationMs: 900_000, untilMs: 900_000 });
        const jobs = await h.state.listJobs(h.runId);
        const run = await h.state.getRun(h.runId);
        const stats = front?.stats() ?? { seen: 0, throttled: 0 };
        const odd = jobs.filter((j) => j.status !== 'DONE' || j.attempts !== 1 || runs.get(j.jobKey) !== 1);
        expect(
          odd.map((j) => ({ ...j, agentRuns: runs.get(j.jobKey) })),
          'jobs not DONE after one attempt and one agent run',
        ).toEqual([]);
        expect(run).toMatchObject({ spentMicros: 16_000, reservedMicros: 0, abandonedMicros: 0 });
        // The front throttles each call with a chance of 30%: over ~130 calls, well above 15%.
        expect(stats.throttled / stats.seen).toBeGreaterThan(0.15);
        record(
          '6 throttling (30%)',
          `${stats.throttled} of ${stats.seen} calls throttled and retried; 16/16 DONE once, spent exact`,
          await audit(h, runs),
        );
      } finally {
        await front?.close();
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '7 budget race: 50 concurrent jobs against a budget that fits 10 never go over it',
    repeated('7 budget race', async () => {
      const h = await harness({ budgetMicros: 10 * 5000 });
      try {
        await h.send(issues(50));
        const { agent } = countingAgent({ workMs: 30, costMicros: 5000 });
        let samples = 0;
        let worst = 0;
        const sampler = setInterval(() => {
          h.state.getRun(h.runId).then((run) => {
            if (!run) return;
            samples++;
            worst = Math.max(worst, run.spentMicros + run.reservedMicros + run.abandonedMicros);
          });
        }, 2);
        await h.drain({ workers: 50, agent });
        clearInterval(sampler);
        const jobs = await h.state.listJobs(h.runId);
        expect(worst).toBeLessThanOrEqual(50_000);
        expect(jobs.filter((j) => j.status === 'DONE')).toHaveLength(10);
        const skipped = jobs.filter((j) => j.status === 'SKIPPED');
        expect(skipped).toHaveLength(40);
        expect(skipped.every((j) => j.errorCode === 'BUDGET_EXHAUSTED')).toBe(true);
        expect((await h.state.getRun(h.runId))?.spentMicros).toBe(50_000);
        record(
          '7 budget race',
          `${samples} samples, max spent+reserved $${(worst / 1e6).toFixed(3)} <= $0.050; 10 DONE, 40 SKIPPED`,
          { ...(await audit(h)), overspent: worst > 50_000 ? 1 : 0 },
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '8 graceful stop: SIGINT to fanout run mid-run, then fanout run again, nothing lost or doubled',
    repeated('8 graceful stop', async () => {
      const stateDir = await mkdtemp(join(tmpdir(), 'fanout-sigint-'));
      const args = ['--import', 'tsx', 'cli/fanout.ts', 'run', '--state-dir', stateDir];
      const first = spawn(
        process.execPath,
        [...args, '--workers', '2', '--mock-issues', '8', '--duration', '400ms'],
        { cwd: ROOT },
      );
      let output = '';
      const code = await new Promise<number | null>((resolve) => {
        first.stdout.on('data', (chunk) => {
          output += chunk;
          if (/DONE mock\/backlog#\d/.test(output) && !first.killed) first.kill('SIGINT');
        });
        first.on('exit', (c) => resolve(c));
      });
      expect(code).toBe(130);
      expect(output).toMatch(/incomplete/);
      const second = await promisify(execFile)(process.execPath, args, { cwd: ROOT, timeout: 60_000 });
      expect(second.stdout).toMatch(/done 8 {2}failed 0/);
      const report = savedReport(stateDir);
      expect(
        report.jobs.every(
          (j: { attempts: number; status: string }) => j.status === 'DONE' && j.attempts === 1,
        ),
      ).toBe(true);
      const costs = report.jobs.reduce((sum: number, j: { costUsd: number }) => sum + j.costUsd, 0);
      expect(report.costUsd.spent).toBeCloseTo(costs, 6);
      expect(report.costUsd.reserved).toBe(0);
      record(
        '8 graceful stop',
        `SIGINT, exit 130, resumed: 8/8 DONE, 1 attempt each, spent = sum of job costs`,
      );
    }),
    TIMEOUT,
  );

  it(
    '9 long job: a job needing 4 invocations completes through continuations',
    repeated('9 long job', async () => {
      const h = await harness({ leaseMs: 2000, visibilityTimeoutMs: 2000 });
      try {
        await h.send(issues(1));
        const agent = simulateAgent({
          durationMs: { min: 1200, max: 1200 },
          failRate: 0,
          costMicros: { min: 4000, max: 4000 },
          seed: 9,
        });
        const { invocations } = await h.drain({
          workers: 1,
          agent,
          invocationMs: 700,
          deps: () => ({ checkpointMarginMs: 350 }),
        });
        const [job] = await h.state.listJobs(h.runId);
        const result = JSON.parse(
          text(await h.workspaces.open(`runs/${h.runId}/jobs/acme/api/1/`).read('result.json')) as string,
        );
        expect(job?.status).toBe('DONE');
        expect(invocations).toBeGreaterThanOrEqual(4);
        expect(result.invocations).toBe(invocations);
        expect(h.queue.deadLetters()).toEqual([]);
        expect(await h.state.getRun(h.runId)).toMatchObject({ spentMicros: 4000, reservedMicros: 0 });
        record(
          '9 long job',
          `1.2 s of work in 0.7 s invocations (checkpoint 0.35 s before the end): ${invocations} invocations, DONE, cost counted once`,
          await audit(h),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '10 workspace escape: .., absolute paths, symlinks and other prefixes are refused for every operation',
    repeated('10 workspace escape', async () => {
      const s3 = await startS3('escape-bucket');
      try {
        const root = await mkdtemp(join(tmpdir(), 'fanout-escape-'));
        const stores = [
          new FolderWorkspaceStore(root),
          new S3WorkspaceStore({ client: s3.client, bucket: s3.bucket }),
        ];
        const paths = [
          '..',
          '../secret.txt',
          '/etc/passwd',
          'a/../../b',
          '../12/result.json',
          'x/../../../other/run',
        ];
        let attempts = 0;
        let refused = 0;
        const attempt = async (operation: () => Promise<unknown>) => {
          attempts++;
          try {
            await operation();
          } catch (error) {
            if ((error as FanoutError).code === 'WORKSPACE_PATH_REFUSED') refused++;
          }
        };
        for (const store of stores) {
          const ws = store.open('runs/r/jobs/acme/api/1/');
          for (const path of paths) {
            await attempt(() => ws.write(path, 'x'));
            await attempt(() => ws.read(path));
            await attempt(() => ws.remove(path));
          }
        }
        const folder = stores[0]?.open('runs/r/jobs/acme/api/1/');
        await writeFile(join(root, 'outside.txt'), 'secret');
        await folder?.write('seed.txt', 'x');
        await symlink(root, join(root, 'runs/r/jobs/acme/api/1/escape'));
        for (const operation of [
          () => folder?.write('escape/x.txt', 'x'),
          () => folder?.read('escape/outside.txt'),
          () => folder?.remove('escape/outside.txt'),
        ]) {
          await attempt(operation as () => Promise<unknown>);
        }
        expect(existsSync(join(root, 'x.txt'))).toBe(false);
        expect(refused).toBe(attempts);
        record('10 workspace escape', `${refused} of ${attempts} escape attempts refused (folder and S3)`);
      } finally {
        await s3.close();
      }
    }),
    TIMEOUT,
  );
  it(
    "11 noisy neighbour: a small repository's jobs sent behind a large one's backlog start within a few rounds of the fleet",
    repeated('11 noisy neighbour', async () => {
      const h = await harness({});
      try {
        const workers = 5;
        await warmUp(h, workers);
        await h.send(issues(500, 'acme/big'));
        await h.send(issues(10, 'acme/small'));
        const { agent, runs, starts } = countingAgent({ workMs: 10 });
        const began = Date.now();
        await h.drain({ workers, agent });
        const tookMs = Date.now() - began;
        expect(runs.size).toBe(510);
        expect(await h.state.listJobs(h.runId)).toHaveLength(510 + WARM_UP);
        expect([...runs.values()].every((n) => n === 1)).toBe(true);
        const order = [...starts.entries()].sort((a, b) => a[1] - b[1]);
        const firstStart = order[0]?.[1] ?? began;
        // A round of the fleet: the median time between a start and the one `workers` later.
        const round = roundOf(
          order.map(([, at]) => at),
          workers,
        );
        const smallKeys = issues(10, 'acme/small').map((issue) => `acme/small#${issue.number}`);
        const waits = smallKeys
          .map((key) => (starts.get(key) ?? Number.NaN) - firstStart)
          .sort((a, b) => a - b);
        const p95 = percentile(waits, 0.95);
        // The groups take turns: the small repository's 10 jobs are among the first 20 starts
        // (4 rounds of 5 workers), not after the 500 of the large one (100 rounds).
        const lastSmall = Math.max(...smallKeys.map((key) => order.findIndex(([k]) => k === key)));
        expect(lastSmall).toBeLessThan(20 + workers);
        expect(p95).toBeLessThan(tookMs / 4);
        record(
          '11 noisy neighbour',
          `acme/small's 10 jobs sent after acme/big's 500: first started after ${Math.round(waits[0] ?? 0)} ms ` +
            `(${((waits[0] ?? 0) / round).toFixed(1)} rounds), p95 wait ${Math.round(p95)} ms = ${(p95 / round).toFixed(1)} rounds ` +
            `of ${workers} workers, its last the ${lastSmall + 1}th of 510 to start (first in, first out: the 510th, ${510 / workers} rounds), ` +
            `acme/big's backlog ${(tookMs / 1000).toFixed(1)} s; 510/510 DONE once`,
          await audit(h, runs),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );

  it(
    '12 priorities: high jobs sent during a normal backlog start within a round of the fleet; low ones start last',
    repeated('12 priorities', async () => {
      const h = await harness({});
      try {
        const workers = 5;
        await warmUp(h, workers);
        const high = issues(10, 'acme/api', 1001);
        await h.send(issues(20, 'acme/chores'), 1, { priority: 'low' });
        await h.send(issues(200, 'acme/api'));
        let highSent = Number.NaN;
        let sending: Promise<void> | undefined;
        const { agent, runs, starts } = countingAgent({
          workMs: 10,
          // A quarter into the normal backlog, urgent work arrives.
          onStart: (started) => {
            if (started === 50)
              sending = h.send(high, 1, { priority: 'high' }).then(() => {
                highSent = Date.now();
              });
          },
        });
        await h.drain({ workers, agent });
        await sending;
        expect(runs.size).toBe(230);
        expect(await h.state.listJobs(h.runId)).toHaveLength(230 + WARM_UP);
        expect([...runs.values()].every((n) => n === 1)).toBe(true);
        const order = [...starts.entries()].sort((a, b) => a[1] - b[1]);
        const roundMs = roundOf(
          order.map(([, at]) => at),
          workers,
        );
        const priorityOf = (key: string) =>
          key.startsWith('acme/chores') ? 'low' : Number(key.split('#')[1]) > 1000 ? 'high' : 'normal';
        const highStarts = order.filter(([key]) => priorityOf(key) === 'high').map(([, at]) => at);
        const lastHigh = Math.max(...highStarts);
        // Between the high jobs' arrival and the last of them starting, only the normal jobs
        // workers had already taken from the queue can start (at most one each).
        const normalsMeanwhile = order.filter(
          ([key, at]) => priorityOf(key) === 'normal' && at > highSent && at < lastHigh,
        ).length;
        expect(normalsMeanwhile).toBeLessThanOrEqual(workers);
        const waits = highStarts.map((at) => Math.max(0, at - highSent)).sort((a, b) => a - b);
        const p95 = percentile(waits, 0.95);
        // The low jobs wait for every normal one: after the first low starts, only normal jobs
        // already taken can start.
        const firstLow = Math.min(...order.filter(([key]) => priorityOf(key) === 'low').map(([, at]) => at));
        const normalsAfterLow = order.filter(
          ([key, at]) => priorityOf(key) === 'normal' && at > firstLow,
        ).length;
        expect(normalsAfterLow).toBeLessThan(workers);
        const normalsWaiting =
          200 - order.filter(([key, at]) => priorityOf(key) === 'normal' && at <= highSent).length;
        record(
          '12 priorities',
          `10 high sent with ${normalsWaiting} normal waiting: p95 wait ${Math.round(p95)} ms = ${(p95 / roundMs).toFixed(1)} rounds ` +
            `of ${workers} workers, ${normalsMeanwhile} normal started meanwhile; 20 low after every normal; 230/230 DONE once`,
          await audit(h, runs),
        );
      } finally {
        await h.close();
      }
    }),
    TIMEOUT,
  );
});

const WARM_UP = 25;

/** Runs a few jobs first, so that the figures are of a warm fleet (engine, code, connections). */
async function warmUp(h: Awaited<ReturnType<typeof harness>>, workers: number): Promise<void> {
  await h.send(issues(WARM_UP, 'acme/warm-up'));
  await h.drain({ workers, agent: countingAgent({ workMs: 10 }).agent });
}

/** A round of the fleet: the median time from a job's start to the start `workers` later. */
function roundOf(startTimes: readonly number[], workers: number): number {
  const gaps = startTimes.slice(workers).map((at, i) => at - (startTimes[i] ?? at));
  return percentile(
    gaps.sort((a, b) => a - b),
    0.5,
  );
}
