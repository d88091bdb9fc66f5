import type { Verdict } from '../ports/agent.js';
import type { DeadLetter } from '../ports/queue.js';
import type { JobRecord, JobStatus, RunRecord } from '../ports/state.js';
import { jobKey, type Priority, parseJobKey, parseJobMessage } from './job.js';
import { plural } from './units.js';

/**
 * The shortest time `workers` workers could finish these jobs in, scheduling the
 * longest first (LPT). For equal durations it is exactly ceil(jobs / workers) x duration.
 */
export function idealMakespan(durationsMs: readonly number[], workers: number): number {
  const loads = new Array<number>(Math.max(1, workers)).fill(0);
  for (const duration of [...durationsMs].sort((a, b) => b - a)) {
    let least = 0;
    for (let i = 1; i < loads.length; i++) if ((loads[i] as number) < (loads[least] as number)) least = i;
    loads[least] = (loads[least] as number) + duration;
  }
  return Math.max(0, ...loads);
}

export interface ReportRow {
  readonly jobKey: string;
  readonly title: string;
  /** Absent for normal. */
  readonly priority?: Priority;
  readonly status: JobStatus;
  readonly errorCode?: string;
  readonly errorMessage?: string;
  /** What the repository's tests said of a DONE job's change, when they ran (a sandbox). */
  readonly verdict?: Verdict;
  /** What the tests and the reviewer said, one line. */
  readonly verification?: string;
  readonly durationMs?: number;
  readonly costUsd: number;
  readonly attempts: number;
  readonly worker?: string;
  /** When its latest attempt started (epoch ms): the order in which the run took its jobs. */
  readonly startedAt?: number;
  /** Where the job's files are: a folder or an s3:// prefix. */
  readonly workspace?: string;
}

/** A dead letter in a run's report: the queue's letter, named by its job when it is one. */
export type DeadLetterRow = Pick<DeadLetter, 'code' | 'reason'> & {
  readonly messageId: string;
  readonly jobKey?: string;
};

/** One repository's share of a run: its jobs' outcomes and what they cost. */
export interface RepositoryRow {
  /** owner/name */
  readonly repo: string;
  readonly jobs: number;
  readonly done: number;
  readonly failed: number;
  readonly skipped: number;
  /** Not started, or given back to the queue to run again. */
  readonly waiting: number;
  readonly running: number;
  /** What its jobs' attempts were charged, as their records say. */
  readonly costUsd: number;
}

export interface RunReport {
  readonly runId: string;
  readonly workers: number;
  readonly jobs: readonly ReportRow[];
  /** Per repository, in order of name: a run may take issues from several. */
  readonly repositories: readonly RepositoryRow[];
  readonly deadLetters: readonly DeadLetterRow[];
  readonly totals: Readonly<Record<JobStatus, number>> & { readonly jobs: number };
  readonly costUsd: {
    readonly spent: number;
    readonly abandoned: number;
    readonly reserved: number;
    readonly budget: number;
  };
  readonly timing: {
    /** Start of dispatch to the last job's end, this session. */
    readonly wallMs: number;
    /** Starting the embedded engine and the worker processes, before dispatch. */
    readonly startupMs: number;
    /** The agents' work time of the jobs that ran this session, one after another. */
    readonly serialMs: number;
    readonly idealMs: number;
    readonly speedup: number;
    readonly efficiency: number;
    /** Why speedup and efficiency do not measure the run as a whole, when they do not. */
    readonly caveat?: string;
  };
  readonly complete: boolean;
}

export interface ReportInput {
  readonly run: RunRecord;
  readonly jobs: readonly JobRecord[];
  readonly deadLetters: readonly DeadLetterRow[];
  readonly workers: number;
  readonly wallMs: number;
  readonly startupMs: number;
  /** The agents' own work time this session on each of the run's jobs that did work. */
  readonly sessionWorkMs: readonly number[];
  /** Jobs of other runs the same workers worked in the same wall time. */
  readonly otherRunsJobs?: number;
  /** The workspace location of a job. */
  readonly locate?: (jobKey: string) => string;
}

export function buildReport(input: ReportInput): RunReport {
  const totals: Record<JobStatus, number> = { PENDING: 0, RUNNING: 0, DONE: 0, FAILED: 0, SKIPPED: 0 };
  for (const job of input.jobs) totals[job.status]++;
  const serialMs = input.sessionWorkMs.reduce((sum, d) => sum + d, 0);
  const idealMs = idealMakespan(input.sessionWorkMs, input.workers);
  const wallMs = input.wallMs;
  const caveat = caveatOf(input, totals);
  return {
    runId: input.run.runId,
    workers: input.workers,
    jobs: input.jobs.map((job) => ({
      jobKey: job.jobKey,
      title: job.title,
      ...(job.priority && job.priority !== 'normal' ? { priority: job.priority } : {}),
      status: job.status,
      ...(job.errorCode ? { errorCode: job.errorCode, errorMessage: job.errorMessage } : {}),
      ...(job.verdict ? { verdict: job.verdict } : {}),
      ...(job.verification ? { verification: job.verification } : {}),
      ...(job.durationMs === undefined ? {} : { durationMs: job.durationMs }),
      costUsd: job.costMicros / 1e6,
      attempts: job.attempts,
      ...(job.worker ? { worker: job.worker } : {}),
      ...(job.startedAt === undefined ? {} : { startedAt: job.startedAt }),
      ...(input.locate ? { workspace: input.locate(job.jobKey) } : {}),
    })),
    repositories: repositoriesOf(input.jobs),
    deadLetters: input.deadLetters,
    totals: { ...totals, jobs: input.jobs.length },
    costUsd: {
      spent: input.run.spentMicros / 1e6,
      abandoned: input.run.abandonedMicros / 1e6,
      reserved: input.run.reservedMicros / 1e6,
      budget: input.run.budgetMicros / 1e6,
    },
    timing: {
      ...(caveat ? { caveat } : {}),
      wallMs,
      startupMs: input.startupMs,
      serialMs,
      idealMs,
      speedup: wallMs > 0 ? serialMs / wallMs : 0,
      efficiency: wallMs > 0 ? idealMs / wallMs : 0,
    },
    complete: totals.PENDING === 0 && totals.RUNNING === 0,
  };
}

/** Each repository's jobs and cost, by name: for the report and for `fanout status`. */
export function repositoriesOf(jobs: readonly JobRecord[]): RepositoryRow[] {
  const rows = new Map<
    string,
    {
      jobs: number;
      done: number;
      failed: number;
      skipped: number;
      waiting: number;
      running: number;
      costMicros: number;
    }
  >();
  for (const job of jobs) {
    const { repo } = parseJobKey(job.jobKey);
    const row = rows.get(repo) ?? {
      jobs: 0,
      done: 0,
      failed: 0,
      skipped: 0,
      waiting: 0,
      running: 0,
      costMicros: 0,
    };
    row.jobs++;
    if (job.status === 'DONE') row.done++;
    else if (job.status === 'FAILED') row.failed++;
    else if (job.status === 'SKIPPED') row.skipped++;
    else if (job.status === 'RUNNING') row.running++;
    else row.waiting++;
    row.costMicros += job.costMicros;
    rows.set(repo, row);
  }
  return [...rows]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([repo, { costMicros, ...counts }]) => ({ repo, ...counts, costUsd: costMicros / 1e6 }));
}

/** When speedup and efficiency cannot stand for the run: it is unfinished, or shared its workers. */
function caveatOf(input: ReportInput, totals: Record<JobStatus, number>): string | undefined {
  const notes: string[] = [];
  if (totals.PENDING + totals.RUNNING > 0)
    notes.push('the run is incomplete: they cover the work done so far');
  if (input.otherRunsJobs) {
    notes.push(
      `the workers also worked ${plural(input.otherRunsJobs, 'job')} of other runs in this wall time`,
    );
  }
  if (input.sessionWorkMs.length === 0) notes.push('no job did its work in this session');
  return notes.length > 0 ? `not the run's whole measure: ${notes.join('; ')}` : undefined;
}

/**
 * A report from the state table alone, for `fanout report`: the wall time is the
 * span from the first job's start to the last one's end, the workers those that ran.
 */
export function reportFromState(input: {
  run: RunRecord;
  jobs: readonly JobRecord[];
  deadLetters: readonly DeadLetterRow[];
  locate: (jobKey: string) => string;
}): RunReport {
  const ran = input.jobs.filter((job) => job.startedAt !== undefined && job.finishedAt !== undefined);
  const start = Math.min(...ran.map((job) => job.startedAt as number));
  const end = Math.max(...ran.map((job) => job.finishedAt as number));
  return buildReport({
    run: input.run,
    jobs: input.jobs,
    deadLetters: input.deadLetters,
    workers: Math.max(1, new Set(ran.map((job) => job.worker)).size),
    wallMs: ran.length > 0 ? end - start : 0,
    startupMs: 0,
    sessionWorkMs: ran.map((job) => job.durationMs ?? 0),
    locate: input.locate,
  });
}

/** The dead letters that belong to the run (and poison ones that arrived while it ran). */
export function deadLetterRows(
  letters: readonly DeadLetter[],
  runId: string,
  since: number,
): DeadLetterRow[] {
  const rows: DeadLetterRow[] = [];
  for (const letter of letters) {
    const parsed = parseJobMessage(letter.body);
    const ours = parsed.ok ? parsed.message.runId === runId : letter.at >= since;
    if (!ours) continue;
    rows.push({
      messageId: letter.id,
      ...(parsed.ok ? { jobKey: jobKey(parsed.message.issue) } : {}),
      code: letter.code,
      reason: letter.reason,
    });
  }
  return rows;
}
