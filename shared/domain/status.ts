import type { QueueDepths } from '../ports/queue.js';
import type { JobRecord, JobStatus, RunRecord, WorkerSlot } from '../ports/state.js';
import { PRIORITIES, type Priority } from './job.js';
import { type RepositoryRow, repositoriesOf } from './report.js';

export interface WorkerRow {
  readonly workerId: string;
  readonly state: 'busy' | 'idle' | 'stopped';
  readonly jobKey?: string;
  readonly since?: number;
  readonly completed: number;
  readonly costMicros: number;
  readonly heartbeatAt?: number;
}

export interface PriorityRow {
  readonly priority: Priority;
  readonly jobs: number;
  readonly waiting: number;
  readonly running: number;
  readonly finished: number;
}

/** The run's jobs by priority, high first. */
export function prioritiesOf(jobs: readonly JobRecord[]): PriorityRow[] {
  const rows = PRIORITIES.map((priority) => ({ priority, jobs: 0, waiting: 0, running: 0, finished: 0 }));
  for (const job of jobs) {
    const row = rows[PRIORITIES.indexOf(job.priority ?? 'normal')] as (typeof rows)[number];
    row.jobs++;
    if (job.status === 'PENDING') row.waiting++;
    else if (job.status === 'RUNNING') row.running++;
    else row.finished++;
  }
  return rows;
}

export interface StatusSnapshot {
  readonly runId: string;
  readonly at: number;
  /** False when no fleet works on the run (a local run that was stopped or killed). */
  readonly running: boolean;
  readonly workers: readonly WorkerRow[];
  readonly queue: QueueDepths;
  readonly totals: Readonly<Record<JobStatus, number>> & { readonly jobs: number };
  /** Per repository: its jobs, those finished, those still waiting or running, and its cost. */
  readonly repositories: readonly RepositoryRow[];
  /** Per priority, high first: what waits shows which jobs start next. */
  readonly priorities: readonly PriorityRow[];
  /** DONE jobs by what their tests said (jobs whose agent ran tests in a sandbox). */
  readonly verdicts: { readonly verified: number; readonly unverified: number; readonly rejected: number };
  readonly ledger: {
    readonly spentMicros: number;
    readonly reservedMicros: number;
    readonly abandonedMicros: number;
    readonly budgetMicros: number;
    readonly repoBudgetMicros?: number;
  };
  /** Jobs finished per minute over the last `windowMs`, or since the run's first start if that is later. */
  readonly throughputPerMinute: number;
  /** Time to finish the jobs left at that throughput; undefined when nothing has finished yet. */
  readonly etaMs?: number;
}

/**
 * The fleet as `fanout status` shows it, from the state table alone: worker slots,
 * the run's jobs and ledger, and the queue's depths.
 */
export function buildStatus(input: {
  run: RunRecord;
  jobs: readonly JobRecord[];
  slots: readonly WorkerSlot[];
  queue: QueueDepths;
  now: number;
  windowMs?: number;
  /** Whether anything works on the run now; unknown (a deployed stack) counts as yes. */
  running?: boolean;
}): StatusSnapshot {
  const running = input.running ?? true;
  const { run, jobs, now } = input;
  const windowMs = input.windowMs ?? 5 * 60_000;
  const totals: Record<JobStatus, number> = { PENDING: 0, RUNNING: 0, DONE: 0, FAILED: 0, SKIPPED: 0 };
  const byWorker = new Map<
    string,
    { completed: number; costMicros: number; running?: JobRecord; last?: number }
  >();
  for (const job of jobs) {
    totals[job.status]++;
    if (!job.worker) continue;
    const row = byWorker.get(job.worker) ?? { completed: 0, costMicros: 0 };
    if (job.status === 'RUNNING') row.running = job;
    else if (job.status !== 'PENDING') {
      row.completed++;
      row.last = Math.max(row.last ?? 0, job.finishedAt ?? 0);
    }
    row.costMicros += job.costMicros;
    byWorker.set(job.worker, row);
  }
  const slotById = new Map(input.slots.map((slot) => [slot.workerId, slot]));
  const ids = [
    ...new Set([...input.slots.filter((s) => s.leaseUntil > now).map((s) => s.workerId), ...byWorker.keys()]),
  ];
  const workers: WorkerRow[] = ids.sort().map((workerId) => {
    const row = byWorker.get(workerId);
    const slot = slotById.get(workerId);
    const current = row?.running && (row.running.leaseUntil ?? 0) > now ? row.running : undefined;
    const busy = running ? current : undefined;
    const heartbeatAt =
      Math.max(current?.heartbeatAt ?? 0, slot?.heartbeatAt ?? 0, row?.last ?? 0) || undefined;
    return {
      workerId,
      state: !running ? 'stopped' : busy ? 'busy' : slot && slot.leaseUntil > now ? 'idle' : 'stopped',
      ...(busy ? { jobKey: busy.jobKey, since: busy.startedAt } : {}),
      completed: row?.completed ?? 0,
      costMicros: row?.costMicros ?? 0,
      ...(heartbeatAt ? { heartbeatAt } : {}),
    };
  });

  // Jobs finished per minute over the last window, or since the first start if the run is younger.
  const firstStart = Math.min(now, ...jobs.map((j) => j.startedAt ?? now));
  const since = Math.max(now - windowMs, firstStart);
  const recent = jobs.filter((j) => j.finishedAt !== undefined && j.finishedAt >= since);
  const throughputPerMinute = recent.length > 0 ? (recent.length / Math.max(1000, now - since)) * 60_000 : 0;
  const left = totals.PENDING + totals.RUNNING;
  return {
    runId: run.runId,
    at: now,
    running,
    workers,
    queue: input.queue,
    totals: { ...totals, jobs: jobs.length },
    repositories: repositoriesOf(jobs),
    priorities: prioritiesOf(jobs),
    verdicts: {
      verified: jobs.filter((j) => j.verdict === 'verified').length,
      unverified: jobs.filter((j) => j.verdict === 'unverified').length,
      rejected: jobs.filter((j) => j.verdict === 'rejected').length,
    },
    ledger: {
      spentMicros: run.spentMicros,
      reservedMicros: run.reservedMicros,
      abandonedMicros: run.abandonedMicros,
      budgetMicros: run.budgetMicros,
      ...(run.repoBudgetMicros !== undefined ? { repoBudgetMicros: run.repoBudgetMicros } : {}),
    },
    throughputPerMinute,
    ...(running && throughputPerMinute > 0 ? { etaMs: (left / throughputPerMinute) * 60_000 } : {}),
  };
}
