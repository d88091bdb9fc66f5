/**
 * The local state has two stores that must agree: the state table (dynalite under
 * `dynamodb/`) and the queue's journal (`queue/journal.jsonl`), plus two small records
 * kept beside them (`current-run.json` with the run's budget, and each run's
 * `outcomes.jsonl`, the jobs it finished). Before a run resumes they are checked against
 * each other; a mismatch is an error that says what was lost and what to do, never a
 * default. The queue can be rebuilt from the state table (`fanout repair`); a state
 * table that lost or rolled back work cannot be rebuilt from the queue (what was spent
 * is not there), so it is refused with the way out.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { checksummedLine, readChecksummedLine } from '../adapters/checksummed-lines.js';
import type { LocalQueue } from '../adapters/local-queue.js';
import { FanoutError } from '../domain/errors.js';
import { JOB_MESSAGE_FILE, JobMessageSchema, jobKey, prefixForKey, queueEntry } from '../domain/job.js';
import { formatUsd } from '../domain/units.js';
import type { FinalStatus, StatePort } from '../ports/state.js';
import type { WorkspaceStore } from '../ports/workspace.js';
import { statePath } from './state-dir.js';

/** Appends each job a run finishes to `runs/<run>/outcomes.jsonl`: a record the state table is checked against. */
export function recordOutcome(stateDir: string, runId: string, key: string, status: FinalStatus): void {
  appendFileSync(
    statePath(stateDir, 'runs', runId, 'outcomes.jsonl'),
    checksummedLine({ jobKey: key, status }),
  );
}

function readOutcomes(stateDir: string, runId: string): Map<string, FinalStatus> {
  const file = statePath(stateDir, 'runs', runId, 'outcomes.jsonl');
  const outcomes = new Map<string, FinalStatus>();
  if (!existsSync(file)) return outcomes;
  for (const text of readFileSync(file, 'utf8').split('\n')) {
    const outcome = readChecksummedLine<{ jobKey: string; status: FinalStatus }>(text);
    if (outcome) outcomes.set(outcome.jobKey, outcome.status);
  }
  return outcomes;
}

/** The job keys of a run that have a message on the queue (waiting, in flight or dead-lettered). */
function queuedKeys(queue: LocalQueue, runId: string): Set<string> {
  const keys = new Set<string>();
  const bodies = [...queue.pendingBodies(), ...queue.deadLetters().map((letter) => letter.body)];
  for (const body of bodies) {
    const parsed = JobMessageSchema.safeParse(safeJson(body));
    if (parsed.success && parsed.data.runId === runId) keys.add(jobKey(parsed.data.issue));
  }
  return keys;
}

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

const list = (keys: readonly string[]) => `${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', ...' : ''}`;

/**
 * Checks that the state table and the queue agree about a run that is about to resume.
 * Throws STATE_DAMAGED naming what is missing and the way out.
 */
export async function checkRunIntegrity(input: {
  stateDir: string;
  runId: string;
  /** The run's budget as current-run.json recorded it, if it did. */
  recordedBudgetMicros?: number;
  state: StatePort;
  queue: LocalQueue;
}): Promise<void> {
  const { stateDir, runId, state, queue } = input;
  const queued = queuedKeys(queue, runId);
  const outcomes = readOutcomes(stateDir, runId);
  const run = await state.getRun(runId);
  const database = statePath(stateDir, 'dynamodb');
  const lostState = (what: string, how = 'it was lost or damaged') =>
    new FanoutError(
      'STATE_DAMAGED',
      `the state table in ${database} ${what}: ${how}, so nothing was run. What was spent ` +
        'cannot be rebuilt from the queue: restore that folder from a copy, or start afresh with another ' +
        `--state-dir${input.recordedBudgetMicros === undefined ? '' : ` (run ${runId} had a budget of ${formatUsd(input.recordedBudgetMicros)})`}.`,
    );
  if (!run) {
    throw lostState(
      `has no run ${runId}, which current-run.json names` +
        (queued.size > 0 ? ` and ${queued.size} queued job(s) belong to` : '') +
        (outcomes.size > 0 ? `, and in which ${outcomes.size} job(s) had finished` : ''),
    );
  }
  const jobs = await state.listJobs(runId);
  // More jobs than counted is a send that stopped half-way (sending again completes it); fewer were lost.
  if (jobs.length < run.jobCount) {
    throw lostState(`holds ${jobs.length} job(s) of run ${runId}, which registered ${run.jobCount}`);
  }
  const byKey = new Map(jobs.map((job) => [job.jobKey, job]));
  const unknown = [...queued].filter((key) => !byKey.has(key));
  if (unknown.length > 0) {
    throw lostState(`has no record of ${unknown.length} queued job(s) of run ${runId} (${list(unknown)})`);
  }
  // A FAILED job may be PENDING again by right: `fanout redrive` reopens it (and queues it).
  const rolledBack = [...outcomes]
    .filter(([key, finished]) => {
      const status = byKey.get(key)?.status;
      return finished !== 'FAILED' && (status === 'PENDING' || status === 'RUNNING');
    })
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
  if (rolledBack.length > 0) {
    throw lostState(
      `shows ${rolledBack.length} job(s) of run ${runId} unfinished that had finished (${list(
        rolledBack.map(([key, status]) => `${key} ${byKey.get(key)?.status}, was ${status}`),
      )}; runs/${runId}/outcomes.jsonl records each outcome)`,
      'it was rolled back',
    );
  }
  const orphans = jobs
    .filter((job) => (job.status === 'PENDING' || job.status === 'RUNNING') && job.enqueuedAt !== undefined)
    .filter((job) => !queued.has(job.jobKey))
    .map((job) => job.jobKey);
  if (orphans.length > 0) {
    throw new FanoutError(
      'STATE_DAMAGED',
      `${orphans.length} unfinished job(s) of run ${runId} have no message in the queue journal ` +
        `${statePath(stateDir, 'queue', 'journal.jsonl')} (${list(orphans)}): it lost them, so nothing was run. ` +
        'Rebuild the queue from the state table with `fanout repair`.',
    );
  }
}

export interface RepairSummary {
  readonly runId: string;
  /** Jobs given a new message. */
  readonly requeued: readonly string[];
  /** Jobs that need one but whose message was not kept (sent before fanout kept them). */
  readonly unrecoverable: readonly string[];
}

/**
 * Rebuilds the queue of a run from the state table: every job registered, sent and not
 * finished that has no message gets one, from the message kept in its workspace.
 */
export async function repairQueue(input: {
  runId: string;
  state: StatePort;
  queue: LocalQueue;
  workspaces: WorkspaceStore;
}): Promise<RepairSummary> {
  const { runId, state, queue } = input;
  if (!(await state.getRun(runId))) {
    throw new FanoutError(
      'STATE_DAMAGED',
      `the state table has no run ${runId}: there is nothing to rebuild the queue from`,
    );
  }
  const queued = queuedKeys(queue, runId);
  const requeued: string[] = [];
  const unrecoverable: string[] = [];
  for (const job of await state.listJobs(runId)) {
    if (job.status !== 'PENDING' && job.status !== 'RUNNING') continue;
    if (job.enqueuedAt === undefined || queued.has(job.jobKey)) continue;
    const workspace = input.workspaces.open(prefixForKey(runId, job.jobKey));
    const kept = await workspace.read(JOB_MESSAGE_FILE);
    const parsed = kept
      ? JobMessageSchema.safeParse(safeJson(Buffer.from(kept).toString('utf8')))
      : undefined;
    if (!parsed?.success) {
      unrecoverable.push(job.jobKey);
      continue;
    }
    await queue.send([queueEntry(parsed.data)]);
    requeued.push(job.jobKey);
  }
  return { runId, requeued, unrecoverable };
}
