import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedDynamo } from '../shared/adapters/embedded-dynamo.js';
import { type Issue, mockIssues, parseJobKey } from '../shared/domain/job.js';
import type { RunReport } from '../shared/domain/report.js';
import { formatMs } from '../shared/domain/units.js';
import type { Dispatcher } from '../shared/local/dispatcher.js';
import { runLocal } from '../shared/local/local-run.js';
import type { InvocationStats } from '../shared/local/protocol.js';
import { openStateDir } from '../shared/local/state-dir.js';
import {
  BEFORE,
  buildCli,
  EFFICIENCY_BEFORE,
  EFFICIENCY_SEED,
  EFFICIENCY_TARGET,
  percentile,
  runBuilt,
} from './bench-local-speed.js';
import { commandFlags } from './command.js';
import { raceLedger } from './ledger-race.js';
import {
  DYNAMODB_ITEM_UNITS_PER_SECOND,
  DYNAMODB_MAX_ITEM_BYTES,
  LLM_FLEET,
  simulateLedgerLoad,
} from './ledger-sim.js';

export const BENCH_HELP = `Usage: fanout bench [--quick] [--out DIR] [--prices FILE]

Measures the local runtime with the simulate agent on the embedded engines and
prints the figures; writes DIR/results.json and DIR/report.html (charts).

  1 speedup   10 jobs of 1 s at 1, 2, 3, 5 and 10 workers, beside the seed's figures
  2 overhead  jobs of zero duration: time outside the agent per job (p50/p95/p99)
              and the state-table, workspace and queue calls per job
  3 scale     10,000 jobs of 50 ms on 50 workers, and 1,000: throughput, p99 wait
              from enqueue to start, peak memory of the runtime and of one worker
  4 AWS cost  the infrastructure cost of 1,000 jobs on AWS from the counted calls and
              the price table (bench/aws-prices.json), and the highest job rate one
              run sustains before one DynamoDB item or partition is the limit
  5 ledger    the budget ledger's items at 10, 100 and 1,000 workers (a simulation,
              before and after #13), and its code raced by 200 workers on dynalite
  6 local     the built command line (as npm start runs it): efficiency of 10 jobs of
              1 s at 1-10 workers, jobs of 0 ms at 1 and 50 workers, command start to
              the first job, 100 workers' start-up and a worker's memory, beside the
              figures from before #14 and the seed's
  7 fairness  500 jobs of one repository sent before 10 of another, on 5 workers:
              the small repository's p95 wait beside the big one's; and 10 high
              jobs sent after 500 normal ones: their p95 wait

  --quick      a reduced set, under a minute (what CI runs)
  --out DIR    where results go (default bench/out)
  --prices F   a price table of your own, shaped like bench/aws-prices.json`;

const SEED = { 1: 10.3, 2: 5.26, 3: 4.2, 5: 2.26 } as Record<number, number>;

interface Prices {
  region: string;
  asOf: string;
  lambda: { requestsPerMillion: number; gbSecondArm64: number };
  sqs: { requestsPerMillion: number };
  dynamodb: { writeRequestUnitsPerMillion: number; readRequestUnitsPerMillion: number };
  s3: { putPerThousand: number; getPerThousand: number };
  limits: { dynamodbItemWritesPerSecond: number; dynamodbPartitionWritesPerSecond: number };
}

interface Measured {
  report: RunReport;
  invocations: readonly InvocationStats[];
  peakRuntimeRss: number;
  waitsMs: number[];
  /** Job keys in the order their jobs started. */
  startOrder: string[];
  /** From the run's first job start to each job's start, per repository. */
  queuedByRepo: Map<string, number[]>;
}

/** One local run in a fresh state dir, measured. */
async function measure(options: {
  jobs: number;
  workers: number;
  durationMs: number;
  countCalls?: boolean;
  /** The backlog, in the order it is sent; mock issues by default. */
  issues?: Issue[];
}): Promise<Measured> {
  const stateDir = await mkdtemp(join(tmpdir(), 'fanout-bench-'));
  let dispatcher: Dispatcher | undefined;
  let peakRuntimeRss = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peakRuntimeRss = Math.max(peakRuntimeRss, process.memoryUsage().rss);
  }, 100);
  try {
    const report = await runLocal({
      stateDir,
      workers: options.workers,
      batchSize: 1,
      timeoutMs: 300_000,
      maxReceiveCount: 3,
      budgetMicros: 1_000_000_000,
      issues: options.issues ?? mockIssues(options.jobs),
      agent: {
        kind: 'simulate',
        durationMs: { min: options.durationMs, max: options.durationMs },
        failRate: 0,
        costMicros: { min: 1000, max: 1000 },
        seed: 1,
      },
      ...(options.countCalls ? { countCalls: true } : {}),
      onDispatcher: (d) => {
        dispatcher = d;
      },
    });
    const local = await openStateDir(stateDir, { create: false });
    const jobs = await local.state.listJobs(report.runId);
    await local.close();
    const waitsMs = jobs.map((j) => (j.startedAt ?? 0) - (j.registeredAt ?? 0));
    const byStart = [...jobs].sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0));
    const startOrder = byStart.map((job) => job.jobKey);
    // From the run's first start: the wait in the queue, without the send before it.
    const firstStart = byStart[0]?.startedAt ?? 0;
    const queuedByRepo = new Map<string, number[]>();
    for (const job of byStart) {
      const { repo } = parseJobKey(job.jobKey);
      queuedByRepo.set(repo, [...(queuedByRepo.get(repo) ?? []), (job.startedAt ?? 0) - firstStart]);
    }
    return {
      report,
      invocations: dispatcher?.invocations ?? [],
      peakRuntimeRss,
      waitsMs,
      startOrder,
      queuedByRepo,
    };
  } finally {
    clearInterval(sampler);
    await rm(stateDir, { recursive: true, force: true });
  }
}

export async function benchCommand(
  args: string[],
  out: (text: string) => void = console.log,
): Promise<number> {
  const values = commandFlags(
    args,
    { quick: { type: 'boolean' }, out: { type: 'string' }, prices: { type: 'string' } },
    BENCH_HELP,
    out,
  );
  if (!values) return 0;
  const quick = Boolean(values.quick);
  const outDir = values.out ?? 'bench/out';
  const prices = JSON.parse(
    readFileSync(values.prices ?? new URL('../bench/aws-prices.json', import.meta.url), 'utf8'),
  ) as Prices;
  const started = Date.now();

  // 1. Speedup against the ideal makespan.
  const speedupJobs = 10;
  const speedupMs = quick ? 200 : 1000;
  const speedup = [];
  for (const workers of quick ? [1, 2, 5] : [1, 2, 3, 5, 10]) {
    const { report } = await measure({ jobs: speedupJobs, workers, durationMs: speedupMs });
    const t = report.timing;
    speedup.push({
      workers,
      wallMs: t.wallMs,
      idealMs: t.idealMs,
      speedup: t.speedup,
      efficiency: t.efficiency,
      startupMs: t.startupMs,
      seedWallMs: quick
        ? undefined
        : SEED[workers] === undefined
          ? undefined
          : (SEED[workers] as number) * 1000,
    });
    out(
      `speedup   ${String(workers).padStart(2)} workers: wall ${formatMs(t.wallMs)}, ideal ${formatMs(t.idealMs)}, ` +
        `speedup ${t.speedup.toFixed(2)}x, efficiency ${(t.efficiency * 100).toFixed(1)}%` +
        (SEED[workers] && !quick
          ? ` (seed: ${SEED[workers]} s, ${((Math.ceil(speedupJobs / workers) / (SEED[workers] as number)) * 100).toFixed(0)}%)`
          : ''),
    );
  }

  // 2. Overhead: jobs of zero duration, so everything measured is control plane.
  const overheadRun = await measure({ jobs: quick ? 60 : 300, workers: 2, durationMs: 0, countCalls: true });
  const per = overheadRun.invocations;
  const overhead = {
    jobs: per.length,
    p50Ms: percentile(
      per.map((i) => i.elapsedMs),
      50,
    ),
    p95Ms: percentile(
      per.map((i) => i.elapsedMs),
      95,
    ),
    p99Ms: percentile(
      per.map((i) => i.elapsedMs),
      99,
    ),
    callsPerJob: {
      state: per.reduce((s, i) => s + i.calls.state, 0) / Math.max(1, per.length),
      workspace: per.reduce((s, i) => s + i.calls.workspace, 0) / Math.max(1, per.length),
      queue: per.reduce((s, i) => s + i.calls.queue, 0) / Math.max(1, per.length),
    },
  };
  out(
    `overhead  ${overhead.jobs} jobs of 0 ms: p50 ${overhead.p50Ms.toFixed(1)} ms, p95 ${overhead.p95Ms.toFixed(1)} ms, ` +
      `p99 ${overhead.p99Ms.toFixed(1)} ms per job; calls per job: state ${overhead.callsPerJob.state.toFixed(2)}, ` +
      `workspace ${overhead.callsPerJob.workspace.toFixed(2)}, queue ${overhead.callsPerJob.queue.toFixed(2)}`,
  );

  // 3. Scale.
  const scale = [];
  for (const size of quick
    ? [{ jobs: 300, workers: 10 }]
    : [
        { jobs: 1000, workers: 50 },
        { jobs: 10_000, workers: 50 },
      ]) {
    const t0 = Date.now();
    const run = await measure({ jobs: size.jobs, workers: size.workers, durationMs: 50 });
    const done = run.report.totals.DONE;
    const row = {
      ...size,
      done,
      once: run.report.jobs.every((j) => j.attempts === 1),
      wallMs: run.report.timing.wallMs,
      jobsPerSecond: done / (run.report.timing.wallMs / 1000),
      p99WaitMs: percentile(run.waitsMs, 99),
      runtimeRssMb: run.peakRuntimeRss / 2 ** 20,
      workerRssMb: Math.max(0, ...run.invocations.map((i) => i.rssBytes)) / 2 ** 20,
      totalMs: Date.now() - t0,
    };
    scale.push(row);
    out(
      `scale     ${size.jobs} jobs of 50 ms on ${size.workers} workers: ${done} DONE${row.once ? ' once each' : ''}, ` +
        `${row.jobsPerSecond.toFixed(0)} jobs/s, p99 enqueue-to-start ${formatMs(row.p99WaitMs)}, ` +
        `runtime ${row.runtimeRssMb.toFixed(0)} MB, one worker ${row.workerRssMb.toFixed(0)} MB`,
    );
  }

  // 4. AWS cost of 1,000 jobs, without the agent. On Lambda each invocation also takes
  // and gives back its worker slot (2 writes); send registers and marks each job (2 writes).
  const memoryGb = 1;
  const statePerJob = overhead.callsPerJob.state + 2 + 2;
  const cost = {
    lambda:
      1000 * (prices.lambda.requestsPerMillion / 1e6) +
      1000 * (overhead.p50Ms / 1000) * memoryGb * prices.lambda.gbSecondArm64,
    sqs: 1000 * (0.1 + 1 + 1 + overhead.callsPerJob.queue) * (prices.sqs.requestsPerMillion / 1e6),
    dynamodb: 1000 * statePerJob * (prices.dynamodb.writeRequestUnitsPerMillion / 1e6),
    s3: 1000 * overhead.callsPerJob.workspace * (prices.s3.putPerThousand / 1000),
  };
  const totalPer1000 = cost.lambda + cost.sqs + cost.dynamodb + cost.s3;
  // The run's budget item takes 2 writes a job (reserve, settle); the slot partition 2 an invocation.
  const maxJobsPerSecond = prices.limits.dynamodbItemWritesPerSecond / 2;
  out(
    `AWS cost  per 1,000 jobs without the agent: $${totalPer1000.toFixed(4)} (Lambda $${cost.lambda.toFixed(4)} ` +
      `for ${overhead.p50Ms.toFixed(0)} ms at ${memoryGb} GB, SQS $${cost.sqs.toFixed(4)}, DynamoDB $${cost.dynamodb.toFixed(4)} ` +
      `for ${statePerJob.toFixed(1)} writes a job, S3 $${cost.s3.toFixed(4)}); prices ${prices.region} ${prices.asOf}`,
  );
  out(
    `AWS limit the worker-slot partition takes 2 writes an invocation and one DynamoDB item ` +
      `${prices.limits.dynamodbItemWritesPerSecond} writes/s: at most about ${maxJobsPerSecond} invocations/s`,
  );

  // The budget ledger at fleet scale, on a virtual clock: a model call every 5 s per worker,
  // 4 s long, 6 a job; each call a reservation and a settlement. Before #13 every write was
  // the run's one item's; now each is one of 32 shard items' (and now and then the pool's).
  const ledger = (['single-item', 'sharded'] as const).flatMap((design) =>
    [10, 100, 1000].map((workers) => simulateLedgerLoad({ workers, design, ...LLM_FLEET })),
  );
  for (const l of ledger) {
    out(
      `ledger    ${l.design === 'sharded' ? 'now   ' : 'before'} ${String(l.workers).padStart(4)} workers ` +
        `(a model call every 5 s each): busiest item ${l.writesPerSecond.toFixed(1)} writes/s, ` +
        `peak ${l.peakUnitsPerSecond} write units/s (limit ${DYNAMODB_ITEM_UNITS_PER_SECOND}), ` +
        `largest item ${(l.peakItemBytes / 1024).toFixed(1)} KB (limit ${DYNAMODB_MAX_ITEM_BYTES / 1024} KB)` +
        (l.design === 'sharded' ? `, pool ${l.poolWritesPerSecond.toFixed(1)} writes/s` : '') +
        (l.peakUnitsPerSecond > DYNAMODB_ITEM_UNITS_PER_SECOND ? ': OVER the per-item limit' : ''),
    );
  }
  // The same ledger code raced on the embedded engine, with crashes injected at its writes.
  const raceEngine = await startEmbeddedDynamo();
  const raceJobs = quick ? 100 : 400;
  // Each job 3 calls of 300..1,000 micro-USD (650 on average): the budget fits a tenth of the work.
  const raceBudget = Math.round((raceJobs * 3 * 650) / 10);
  const race = await raceLedger({
    endpoint: raceEngine.endpoint,
    workers: quick ? 50 : 200,
    jobs: raceJobs,
    callsPerJob: 3,
    worstMicros: 1000,
    budgetMicros: raceBudget,
    crashChance: 0.02,
    seed: 13,
  }).finally(() => raceEngine.close());
  out(
    `ledger    race ${quick ? 50 : 200} workers on dynalite, budget for a tenth of the work, ` +
      `${race.crashes.before + race.crashes.after} crashes at its writes: most committed ${race.maxCommittedMicros} of ` +
      `${raceBudget} micro-USD (${race.consistentSamples} snapshots), ${race.violations.length} violations, ` +
      `${race.final.open} reservations open at the end, ledger ${race.final.spentMicros + race.final.abandonedMicros} = ` +
      `jobs ${race.jobsMicros} + settled by the dead ${race.deadSettledMicros}, left ${raceBudget - race.final.spentMicros - race.final.abandonedMicros}; ` +
      `busiest item ${race.busiestItemWrites} of ${race.ledgerWrites} writes, largest ${race.maxItemBytes} bytes (${formatMs(race.tookMs)})`,
  );

  // 7. Fair share (#15): a large repository's backlog sent first, a small one's after it.
  const fair = await benchFairness(quick, out);

  // 6. Local speed (#14): the built command line, as `npm start` runs it, timed from outside.
  const local = await benchLocalSpeed(quick, out);

  const results = {
    at: new Date().toISOString(),
    quick,
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    speedup,
    overhead,
    scale,
    aws: {
      per1000JobsUsd: totalPer1000,
      breakdownUsd: cost,
      statePerJob,
      maxJobsPerSecond,
      prices: { region: prices.region, asOf: prices.asOf },
    },
    ledger,
    ledgerRace: race,
    localSpeed: local,
    fairness: fair,
    tookMs: Date.now() - started,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, 'report.html'), benchPage(results));
  out(
    `\nwritten: ${join(outDir, 'results.json')}, ${join(outDir, 'report.html')} (took ${formatMs(results.tookMs)})`,
  );
  return 0;
}

/**
 * Section 7: repository A's backlog sent first and B's few jobs right after, to 5 workers.
 * On a first-in-first-out queue B's jobs wait for A's whole backlog; with the repositories
 * taking turns, about one round of the fleet.
 */
export async function benchFairness(quick: boolean, out: (text: string) => void) {
  const big = quick ? 60 : 500;
  const durationMs = 50;
  const issue = (repo: string, number: number): Issue => ({
    repo,
    number,
    title: `${repo} ${number}`,
    body: '',
    labels: [],
  });
  const issues = [
    ...Array.from({ length: big }, (_, i) => issue('acme/big', i + 1)),
    ...Array.from({ length: 10 }, (_, i) => issue('acme/small', i + 1)),
  ];
  const run = await measure({ jobs: issues.length, workers: 5, durationMs, issues });
  const smallP95 = percentile(run.queuedByRepo.get('acme/small') ?? [], 95);
  // Where the small repository's last job came in the order the jobs started.
  const smallLastStart = Math.max(
    0,
    ...run.startOrder.map((key, i) => (key.startsWith('acme/small#') ? i + 1 : 0)),
  );
  const bigP95 = percentile(run.queuedByRepo.get('acme/big') ?? [], 95);
  // First in, first out, the small repository's jobs would have started after the big one's last.
  const fifoMs = Math.max(0, ...(run.queuedByRepo.get('acme/big') ?? []));
  out(
    `fairness  ${big} jobs of acme/big sent first, then 10 of acme/small, 5 workers, ${durationMs} ms jobs: ` +
      `from the first job's start, acme/small's jobs started within ${formatMs(smallP95)} (p95), acme/big's ${formatMs(bigP95)} ` +
      `(first in, first out would have started acme/small's after acme/big's last, at ${formatMs(fifoMs)})` +
      `; its last job was number ${smallLastStart} of ${issues.length} to start`,
  );

  // Priorities: the same backlog, then 10 urgent jobs (label priority:high) sent after it.
  const urgent = Array.from({ length: 10 }, (_, i) => ({
    ...issue('acme/urgent', i + 1),
    labels: ['priority:high'],
  }));
  const ranked = await measure({
    jobs: big + 10,
    workers: 5,
    durationMs,
    issues: [...Array.from({ length: big }, (_, i) => issue('acme/big', i + 1)), ...urgent],
  });
  const highP95 = percentile(ranked.queuedByRepo.get('acme/urgent') ?? [], 95);
  const highLastStart = Math.max(
    0,
    ...ranked.startOrder.map((key, i) => (key.startsWith('acme/urgent#') ? i + 1 : 0)),
  );
  out(
    `priority  ${big} normal jobs sent first, then 10 high ones, 5 workers, ${durationMs} ms jobs: from the first job's start, ` +
      `the high jobs started within ${formatMs(highP95)} (p95); the last of them was number ${highLastStart} of ${big + 10} to start`,
  );
  return {
    big,
    small: 10,
    workers: 5,
    durationMs,
    smallP95WaitMs: smallP95,
    bigP95WaitMs: bigP95,
    fifoWaitMs: fifoMs,
    smallLastStart,
    highP95WaitMs: highP95,
    highLastStart,
  };
}

/** Section 6: efficiency, zero-duration throughput, start-up and memory of the built command line. */
export async function benchLocalSpeed(quick: boolean, out: (text: string) => void) {
  buildCli();
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const range = (xs: readonly number[], f: (x: number) => string) =>
    xs.length === 1 || Math.min(...xs) === Math.max(...xs)
      ? f(xs[0] as number)
      : `${f(Math.min(...xs))}-${f(Math.max(...xs))}`;
  const runs = quick ? 1 : 2;
  const efficiency = [];
  for (const workers of quick ? [] : [1, 2, 3, 5, 10]) {
    const measured: number[] = [];
    for (let i = 0; i < runs; i++) {
      const run = await runBuilt(['--mock-issues', '10', '--duration', '1s', '--workers', String(workers)]);
      measured.push(run.report.timing.efficiency);
    }
    efficiency.push({ workers, efficiency: measured });
    out(
      `local     10 jobs of 1 s on ${String(workers).padStart(2)} workers (built CLI): efficiency ${range(measured, pct)}; ` +
        `before #14 ${EFFICIENCY_BEFORE[workers]}, seed ${EFFICIENCY_SEED[workers] ?? '-'}, target ${EFFICIENCY_TARGET[workers]}`,
    );
  }
  const zero = [];
  for (const size of quick
    ? [{ jobs: 100, workers: 1 }]
    : [
        { jobs: 300, workers: 1 },
        { jobs: 1000, workers: 50 },
      ]) {
    const rates: number[] = [];
    for (let i = 0; i < (size.workers === 1 ? runs : 1); i++) {
      const run = await runBuilt([
        '--mock-issues',
        String(size.jobs),
        '--duration',
        '0ms',
        '--workers',
        String(size.workers),
      ]);
      rates.push(size.jobs / (run.report.timing.wallMs / 1000));
    }
    zero.push({ ...size, jobsPerSecond: rates });
    out(
      `local     ${size.jobs} jobs of 0 ms on ${size.workers} worker(s): ${range(rates, (r) => r.toFixed(0))} jobs/s` +
        (size.workers === 1
          ? ` (before #14: ${BEFORE.zeroJobsPerSecondOneWorker}; target 200)`
          : ' (target 300)'),
    );
  }
  const firstStarted: number[] = [];
  for (let i = 0; i < runs; i++) {
    firstStarted.push(
      (await runBuilt(['--mock-issues', '5', '--duration', '0ms', '--workers', '3'])).firstStartedMs,
    );
  }
  out(
    `local     command start to the first job started, 3 workers: ${range(firstStarted, (ms) => formatMs(ms))} ` +
      `(before #14: ${BEFORE.cliStartSeconds} s to start; target 1.5 s)`,
  );
  // Each worker runs a few jobs of 0.5-1.5 s, and its memory is read while it waits for more.
  const fleet = await runBuilt(
    quick
      ? ['--mock-issues', '20', '--duration', '500ms-1500ms', '--workers', '10']
      : ['--mock-issues', '300', '--duration', '500ms-1500ms', '--workers', '100'],
    { sampleMemory: true },
  );
  const memory = fleet.workerMemory;
  const privateMb = percentile(
    memory.map((m) => m.privateMb),
    50,
  );
  const rssMb = percentile(
    memory.map((m) => m.rssMb),
    50,
  );
  out(
    `local     ${fleet.report.workers} workers started in ${formatMs(fleet.report.timing.startupMs)} ` +
      `(first job at ${formatMs(fleet.firstStartedMs)} from the command)` +
      (quick ? '' : ` (before #14: ${BEFORE.hundredWorkersStartSeconds} s; target 10 s)`) +
      `; a worker's memory, median of ${memory.length}: ${privateMb.toFixed(1)} MB private, ${rssMb.toFixed(1)} MB resident ` +
      '(target 40 MB)',
  );
  return {
    efficiency,
    zero,
    firstStartedMs: firstStarted,
    fleet: {
      workers: fleet.report.workers,
      startupMs: fleet.report.timing.startupMs,
      firstStartedMs: fleet.firstStartedMs,
      workerPrivateMb: privateMb,
      workerRssMb: rssMb,
    },
  };
}

/** A self-contained page: speedup and efficiency against workers, overhead percentiles. */
export function benchPage(results: {
  speedup: { workers: number; speedup: number; efficiency: number }[];
  overhead: { p50Ms: number; p95Ms: number; p99Ms: number };
  at: string;
}): string {
  const w = 420;
  const h = 240;
  const pad = 40;
  const maxWorkers = Math.max(...results.speedup.map((s) => s.workers));
  const x = (workers: number) => pad + ((workers - 1) / Math.max(1, maxWorkers - 1)) * (w - 2 * pad);
  const line = (points: [number, number][], yMax: number) =>
    points
      .map(([px, py]) => `${x(px).toFixed(1)},${(h - pad - (py / yMax) * (h - 2 * pad)).toFixed(1)}`)
      .join(' ');
  const speedupChart = `<svg width="${w}" height="${h}" role="img" aria-label="speedup against workers">
    <polyline fill="none" stroke="#999" stroke-dasharray="4" points="${line(
      results.speedup.map((s) => [s.workers, s.workers]),
      maxWorkers,
    )}"/>
    <polyline fill="none" stroke="#1f6feb" stroke-width="2" points="${line(
      results.speedup.map((s) => [s.workers, s.speedup]),
      maxWorkers,
    )}"/>
    ${results.speedup.map((s) => `<text x="${x(s.workers)}" y="${h - 10}" font-size="11" text-anchor="middle">${s.workers}</text>`).join('')}
    ${results.speedup.map((s) => `<text x="${x(s.workers)}" y="${(h - pad - (s.speedup / maxWorkers) * (h - 2 * pad) - 6).toFixed(1)}" font-size="10" text-anchor="middle">${s.speedup.toFixed(2)}x</text>`).join('')}
    <text x="4" y="${pad + 4}" font-size="10">${maxWorkers}x</text><text x="4" y="${h - pad}" font-size="10">0</text>
    <text x="${pad}" y="16" font-size="12">speedup (blue) and ideal (dashed) by workers</text></svg>`;
  const efficiencyChart = `<svg width="${w}" height="${h}" role="img" aria-label="efficiency against workers">
    <polyline fill="none" stroke="#2da44e" stroke-width="2" points="${line(
      results.speedup.map((s) => [s.workers, s.efficiency * 100]),
      100,
    )}"/>
    ${results.speedup.map((s) => `<text x="${x(s.workers)}" y="${h - 10}" font-size="11" text-anchor="middle">${s.workers}</text>`).join('')}
    ${results.speedup.map((s) => `<text x="${x(s.workers)}" y="${(h - pad - s.efficiency * (h - 2 * pad) + 16).toFixed(1)}" font-size="10" text-anchor="middle">${(s.efficiency * 100).toFixed(1)}%</text>`).join('')}
    <text x="4" y="${pad + 4}" font-size="10">100%</text><text x="4" y="${h - pad}" font-size="10">0</text>
    <text x="${pad}" y="16" font-size="12">efficiency against the ideal makespan, by workers</text></svg>`;
  const bars = (['p50Ms', 'p95Ms', 'p99Ms'] as const)
    .map((k, i) => {
      const v = results.overhead[k];
      const max = Math.max(1, results.overhead.p99Ms);
      const bw = (v / max) * (w - 2 * pad - 90);
      return `<rect x="${pad}" y="${30 + i * 40}" width="${bw.toFixed(1)}" height="24" fill="#bf8700"/><text x="${pad + bw + 6}" y="${47 + i * 40}" font-size="12">${k.slice(0, 3)} ${v.toFixed(1)} ms</text>`;
    })
    .join('');
  const overheadChart = `<svg width="${w}" height="160" role="img" aria-label="overhead percentiles"><text x="${pad}" y="16" font-size="12">control-plane time per job</text>${bars}</svg>`;
  return `<!doctype html><meta charset="utf-8"><title>fanout bench</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}svg{border:1px solid #ddd;margin:0 1em 1em 0}</style>
<h1>fanout bench</h1><p>${results.at}</p>${speedupChart}${efficiencyChart}${overheadChart}
<pre>${JSON.stringify(results, null, 2).replace(/</g, '&lt;')}</pre>`;
}
