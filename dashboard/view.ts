import { jobKey, parseJobKey, parseJobMessage } from '../shared/domain/job.js';
import type { RunReport } from '../shared/domain/report.js';
import type { StatusSnapshot } from '../shared/domain/status.js';
import type { DeadLetter } from '../shared/ports/queue.js';
import type { JobRecord, RunRecord } from '../shared/ports/state.js';

/**
 * What the dashboard's page is sent: plain data built from the same state `fanout status`
 * and `fanout report` read. The page draws it; it computes nothing of its own.
 */
export interface DashboardView {
  readonly at: number;
  /** Where the data comes from, as the status command names it. */
  readonly source: string;
  /** Whether the server accepts actions (redrive): started with --allow-actions. */
  readonly actions: boolean;
  readonly runs: readonly RunSummary[];
  /** The run shown: the one asked for, else the newest. */
  readonly runId?: string;
  readonly status?: StatusSnapshot;
  /** Changes whenever any job's row does: the page fetches the jobs again only then. */
  readonly jobsVersion: string;
  readonly budget?: BudgetView;
  readonly throughput?: ThroughputView;
  /** The report's figures, once the run has no job left to run. */
  readonly finished?: {
    readonly wallMs: number;
    readonly serialMs: number;
    readonly idealMs: number;
    readonly speedup: number;
    readonly efficiency: number;
    readonly caveat?: string;
  };
  /**
   * The run's dead letters, read with every view where that costs nothing (locally). On AWS,
   * reading SQS's dead-letter queue hides its messages from other readers for a while, so the
   * page lists them only when asked (`listed` false) and shows their count meanwhile.
   */
  readonly deadLetters: readonly DeadLetterRow[];
  readonly deadLettersListed: boolean;
}

export interface RunSummary {
  readonly runId: string;
  readonly createdAt: number;
  readonly jobCount: number;
  readonly budgetMicros: number;
  readonly spentMicros: number;
}

/** One job as the page lists it: a row of the table and a bar of the fleet's timeline. */
export interface JobRow {
  readonly key: string;
  readonly repo: string;
  readonly title: string;
  readonly status: JobRecord['status'];
  readonly priority?: string;
  readonly errorCode?: string;
  readonly errorMessage?: string;
  readonly verdict?: string;
  readonly attempts: number;
  /** Invocations of the finishing attempt: more than 1 when it continued from checkpoints. */
  readonly invocations?: number;
  readonly model?: string;
  readonly durationMs?: number;
  readonly costMicros: number;
  readonly worker?: string;
  readonly startedAt?: number;
  readonly finishedAt?: number;
}

export interface BudgetView {
  readonly budgetMicros: number;
  /** Spent over time: each finished job's cost added at its end (ms, micro-USD). */
  readonly spent: readonly (readonly [number, number])[];
  /** Reserved (and spent) as the ledger said at each of the server's reads since it started. */
  readonly samples: readonly (readonly [number, number, number])[];
  /** What the run will have spent when every job is done, at its cost per finished job so far. */
  readonly projectedMicros?: number;
  readonly byRepository: readonly { readonly repo: string; readonly costMicros: number }[];
  /** By the model (or agent) that finished each job; jobs not finished yet count as "unfinished". */
  readonly byModel: readonly { readonly model: string; readonly costMicros: number }[];
}

export interface ThroughputView {
  /** Jobs finished in each minute since the first start (minute start, count). */
  readonly perMinute: readonly (readonly [number, number])[];
  /** Queue depth at each of the server's reads (ms, waiting, in flight). */
  readonly queue: readonly (readonly [number, number, number])[];
  readonly etaMs?: number;
  readonly perMinuteNow: number;
}

export interface DeadLetterRow {
  readonly id: string;
  readonly jobKey?: string;
  readonly code: string;
  readonly reason: string;
  readonly at: number;
  readonly receiveCount: number;
}

export function jobRows(jobs: readonly JobRecord[]): JobRow[] {
  return jobs.map((job) => ({
    key: job.jobKey,
    repo: parseJobKey(job.jobKey).repo,
    title: job.title,
    status: job.status,
    ...(job.priority && job.priority !== 'normal' ? { priority: job.priority } : {}),
    ...(job.errorCode ? { errorCode: job.errorCode, errorMessage: job.errorMessage ?? '' } : {}),
    ...(job.verdict ? { verdict: job.verdict } : {}),
    attempts: job.attempts,
    ...(job.invocations && job.invocations > 1 ? { invocations: job.invocations } : {}),
    ...(job.model ? { model: job.model } : {}),
    ...(job.durationMs === undefined ? {} : { durationMs: job.durationMs }),
    costMicros: job.costMicros,
    ...(job.worker ? { worker: job.worker } : {}),
    ...(job.startedAt === undefined ? {} : { startedAt: job.startedAt }),
    ...(job.finishedAt === undefined ? {} : { finishedAt: job.finishedAt }),
  }));
}

/** A short digest of the rows: equal digests, equal rows (for the page's refetch). */
export function versionOf(rows: readonly JobRow[]): string {
  let hash = 2166136261;
  const text = JSON.stringify(rows);
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return `${rows.length}-${(hash >>> 0).toString(36)}`;
}

export function budgetView(
  run: RunRecord,
  jobs: readonly JobRecord[],
  samples: readonly (readonly [number, number, number])[],
): BudgetView {
  const finished = jobs
    .filter((job) => job.finishedAt !== undefined && job.costMicros > 0)
    .sort((a, b) => (a.finishedAt as number) - (b.finishedAt as number));
  let total = 0;
  const spent: [number, number][] = [];
  const start = Math.min(run.createdAt, ...jobs.map((job) => job.startedAt ?? Number.POSITIVE_INFINITY));
  spent.push([start, 0]);
  for (const job of finished) {
    total += job.costMicros;
    spent.push([job.finishedAt as number, total]);
  }
  const done = jobs.filter((job) => job.status !== 'PENDING' && job.status !== 'RUNNING').length;
  const byModel = new Map<string, number>();
  for (const job of jobs) {
    if (job.costMicros === 0) continue;
    const model = job.model ?? 'unfinished';
    byModel.set(model, (byModel.get(model) ?? 0) + job.costMicros);
  }
  const byRepo = new Map<string, number>();
  for (const job of jobs) {
    const { repo } = parseJobKey(job.jobKey);
    byRepo.set(repo, (byRepo.get(repo) ?? 0) + job.costMicros);
  }
  return {
    budgetMicros: run.budgetMicros,
    spent,
    samples,
    ...(done > 0 ? { projectedMicros: Math.round((run.spentMicros / done) * jobs.length) } : {}),
    byRepository: [...byRepo]
      .map(([repo, costMicros]) => ({ repo, costMicros }))
      .sort((a, b) => b.costMicros - a.costMicros),
    byModel: [...byModel]
      .map(([model, costMicros]) => ({ model, costMicros }))
      .sort((a, b) => b.costMicros - a.costMicros),
  };
}

export function throughputView(
  jobs: readonly JobRecord[],
  status: StatusSnapshot,
  queueSamples: readonly (readonly [number, number, number])[],
): ThroughputView {
  const ends = jobs.map((job) => job.finishedAt).filter((t): t is number => t !== undefined);
  const starts = jobs.map((job) => job.startedAt).filter((t): t is number => t !== undefined);
  const perMinute: [number, number][] = [];
  if (starts.length > 0) {
    const first = Math.floor(Math.min(...starts) / 60_000) * 60_000;
    const last = Math.max(status.at, ...ends);
    for (let minute = first; minute <= last; minute += 60_000) perMinute.push([minute, 0]);
    for (const end of ends) {
      const slot = perMinute[Math.floor((end - first) / 60_000)];
      if (slot) slot[1]++;
    }
  }
  return {
    perMinute,
    queue: queueSamples,
    perMinuteNow: status.throughputPerMinute,
    ...(status.etaMs === undefined ? {} : { etaMs: status.etaMs }),
  };
}

export function finishedFigures(report: RunReport): DashboardView['finished'] {
  const t = report.timing;
  return {
    wallMs: t.wallMs,
    serialMs: t.serialMs,
    idealMs: t.idealMs,
    speedup: t.speedup,
    efficiency: t.efficiency,
    ...(t.caveat ? { caveat: t.caveat } : {}),
  };
}

export function deadLetterRows(letters: readonly DeadLetter[], runId: string | undefined): DeadLetterRow[] {
  const rows: DeadLetterRow[] = [];
  for (const letter of letters) {
    // The report's reading of a dead letter: a job's message names its run; a poison one is shown as it is.
    const parsed = parseJobMessage(letter.body);
    if (parsed.ok && runId !== undefined && parsed.message.runId !== runId) continue;
    rows.push({
      id: letter.id,
      ...(parsed.ok ? { jobKey: jobKey(parsed.message.issue) } : {}),
      code: letter.code,
      reason: letter.reason,
      at: letter.at,
      receiveCount: letter.receiveCount,
    });
  }
  return rows;
}
