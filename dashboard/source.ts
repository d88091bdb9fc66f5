import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Target } from '../cli/targets.js';
import { FanoutError } from '../shared/domain/errors.js';
import { ISSUE_BODY_FILE, JOB_MESSAGE_FILE, prefixForKey } from '../shared/domain/job.js';
import { reportFromState } from '../shared/domain/report.js';
import { buildStatus } from '../shared/domain/status.js';
import { liveRun, statePath } from '../shared/local/state-dir.js';
import {
  budgetView,
  type DashboardView,
  type DeadLetterRow,
  deadLetterRows,
  finishedFigures,
  type JobRow,
  jobRows,
  throughputView,
  versionOf,
} from './view.js';

/** One job as its page shows it: the record, and what its workspace holds. */
export interface JobDetail {
  readonly row: JobRow;
  readonly location: string;
  readonly issue?: { readonly title: string; readonly body?: string; readonly url?: string };
  /** The agent's conversation (agent/transcript.json): messages with text, tool calls and results. */
  readonly transcript?: unknown[];
  readonly reviewTranscript?: unknown[];
  readonly diff?: string;
  readonly verification?: unknown;
  readonly published?: { readonly mode: string; readonly url?: string };
}

/**
 * Where the dashboard reads: a target (the same one `fanout status` opens), opened for each
 * read when it is a local state dir (so the dashboard never holds the engine a `fanout run`
 * needs: it reads through the run's own engine while one is live), or kept open on AWS.
 */
export class DashboardSource {
  private kept: Target | undefined;
  /** One target open at a time: two engines on one local state dir would fight over it. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The last view of each run, with the state's signature when it was read. */
  private readonly views = new Map<string, { signature: string; view: DashboardView }>();
  /** Per run: the ledger's (t, spent, reserved) and the queue's (t, waiting, in flight) at each read. */
  private readonly samples = new Map<
    string,
    { ledger: [number, number, number][]; queue: [number, number, number][] }
  >();
  private readonly jobs = new Map<string, { version: string; rows: JobRow[] }>();

  constructor(
    private readonly open: () => Promise<Target>,
    private readonly keepOpen: boolean,
    readonly description: string,
    /**
     * Changes whenever the state may have (a local state dir: a live run, or its files'
     * times); while it stays the same the last view is served without opening anything, so
     * the dashboard takes the state dir's lock only when there is something new to read.
     * @default always changed
     */
    private readonly signature: () => string = () => String(Math.random()),
  ) {}

  private use<T>(read: (target: Target) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      if (this.keepOpen) {
        this.kept ??= await this.open();
        return read(this.kept);
      }
      const target = await this.open();
      try {
        return await read(target);
      } finally {
        await target.close();
      }
    });
    this.queue = next.catch(() => {});
    return next;
  }

  /** Everything the page shows of a run (the newest when none is named), and the list of runs. */
  async view(runId: string | undefined, actions: boolean): Promise<DashboardView> {
    const signature = this.signature();
    const key = `${runId ?? ''}|${actions}`;
    const cached = this.views.get(key);
    if (cached && cached.signature === signature) return cached.view;
    const view = await this.read(runId, actions);
    // Taken again after the read: opening a stopped state dir compacts its journal once.
    this.views.set(key, { signature: this.signature(), view });
    return view;
  }

  private read(runId: string | undefined, actions: boolean): Promise<DashboardView> {
    return this.use(async (target) => {
      const runs = (await target.state.listRuns(50)).map((run) => ({
        runId: run.runId,
        createdAt: run.createdAt,
        jobCount: run.jobCount,
        budgetMicros: run.budgetMicros,
        spentMicros: run.spentMicros,
      }));
      const id = runId ?? (await target.defaultRunId()) ?? runs[0]?.runId;
      const base = { at: Date.now(), source: target.description, actions, runs };
      if (!id) return { ...base, jobsVersion: '0', deadLetters: [], deadLettersListed: false };
      const run = await target.state.getRun(id);
      if (!run) throw new FanoutError('INVALID_INPUT', `run "${id}" does not exist in ${target.description}`);
      const listed = target.keepsMessages;
      // The jobs are read once, for the status and the rows (on AWS every read costs).
      const [records, slots, depths, letters] = await Promise.all([
        target.state.listJobs(id),
        target.state.listSlots(),
        target.queue.depth(),
        listed ? target.queue.deadLetters() : Promise.resolve([]),
      ]);
      const status = buildStatus({
        run,
        jobs: records,
        slots,
        queue: depths,
        now: Date.now(),
        ...(target.running === undefined ? {} : { running: target.running }),
      });
      const rows = jobRows(records);
      const version = versionOf(rows);
      this.jobs.set(id, { version, rows });
      const samples = this.samples.get(id) ?? { ledger: [], queue: [] };
      this.samples.set(id, samples);
      samples.ledger.push([status.at, run.spentMicros, run.reservedMicros]);
      samples.queue.push([status.at, status.queue.visible, status.queue.inFlight]);
      // A day of reads at one a second is enough history for a page.
      for (const series of [samples.ledger, samples.queue]) if (series.length > 86_400) series.shift();
      const complete = status.totals.PENDING === 0 && status.totals.RUNNING === 0 && records.length > 0;
      const report = complete
        ? (target.savedReport?.(id) ??
          reportFromState({
            run,
            jobs: records,
            deadLetters: [],
            locate: (key) => target.workspaces.open(prefixForKey(id, key)).location,
          }))
        : undefined;
      return {
        ...base,
        runId: id,
        status,
        jobsVersion: version,
        budget: budgetView(run, records, samples.ledger),
        throughput: throughputView(records, status, samples.queue),
        ...(report ? { finished: finishedFigures(report) } : {}),
        deadLetters: deadLetterRows(letters, id),
        deadLettersListed: listed,
      };
    });
  }

  /** The run's jobs as of the last view (read now if there was none). */
  async jobRows(runId: string): Promise<{ version: string; rows: JobRow[] }> {
    const cached = this.jobs.get(runId);
    if (cached) return cached;
    return this.use(async (target) => {
      const rows = jobRows(await target.state.listJobs(runId));
      return { version: versionOf(rows), rows };
    });
  }

  job(runId: string, key: string): Promise<JobDetail> {
    return this.use(async (target) => {
      const record = await target.state.getJob(runId, key);
      if (!record) throw new FanoutError('INVALID_INPUT', `no job ${key} in run ${runId}`);
      const workspace = target.workspaces.open(prefixForKey(runId, key));
      const text = async (path: string) => {
        const bytes = await workspace.read(path);
        return bytes ? Buffer.from(bytes).toString('utf8') : undefined;
      };
      const json = async (path: string) => {
        const raw = await text(path);
        try {
          return raw ? (JSON.parse(raw) as unknown) : undefined;
        } catch {
          return undefined;
        }
      };
      const message = (await json(JOB_MESSAGE_FILE)) as
        | { issue?: { title: string; body: string; url?: string } }
        | undefined;
      const body = message?.issue?.body ?? (await text(ISSUE_BODY_FILE));
      const [row] = jobRows([record]);
      const transcript = await json('agent/transcript.json');
      const reviewTranscript = await json('agent/review-transcript.json');
      const diff = await text('agent/diff.patch');
      const verification = await json('agent/verification.json');
      const published = await json('agent/published.json');
      return {
        row: row as JobRow,
        location: workspace.location,
        issue: {
          title: record.title,
          ...(body !== undefined ? { body } : {}),
          ...(message?.issue?.url ? { url: message.issue.url } : {}),
        },
        ...(Array.isArray(transcript) ? { transcript } : {}),
        ...(Array.isArray(reviewTranscript) ? { reviewTranscript } : {}),
        ...(diff ? { diff } : {}),
        ...(verification ? { verification } : {}),
        ...(published ? { published: published as JobDetail['published'] } : {}),
      };
    });
  }

  /** The dead letters, read now (on AWS this hides them from other readers for the visibility timeout). */
  deadLetters(runId: string | undefined): Promise<DeadLetterRow[]> {
    return this.use(async (target) => deadLetterRows(await target.queue.deadLetters(), runId));
  }

  /** Moves dead letters back onto the queue: the named ones, or all. */
  redrive(ids: readonly string[] | 'all'): Promise<number> {
    this.views.clear();
    return this.use(async (target) => {
      const chosen = ids === 'all' ? (await target.queue.deadLetters()).map((letter) => letter.id) : ids;
      return chosen.length === 0 ? 0 : target.queue.redrive(chosen);
    });
  }

  async close(): Promise<void> {
    await this.kept?.close();
    this.kept = undefined;
  }
}

/**
 * A local state dir's signature: "live" and the time while a run serves it (its state
 * changes all the time); otherwise a digest of the files every change of a stopped state
 * dir writes: the queue's journal (send, redrive) and the current run. Contents, not
 * times: opening the queue rewrites the journal as it was (compacted), and opening the
 * engine rewrites the table's files.
 */
export function stateDirSignature(stateDir: string): () => string {
  const digest = (path: string) => {
    try {
      return createHash('sha1').update(readFileSync(path)).digest('hex');
    } catch {
      return 'none';
    }
  };
  return () =>
    liveRun(stateDir)
      ? `live ${Date.now()}`
      : `still ${digest(statePath(stateDir, 'queue', 'journal.jsonl'))} ${digest(statePath(stateDir, 'current-run.json'))}`;
}
