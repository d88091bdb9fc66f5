import type { QueueAdmin } from '../ports/queue.js';
import type { JobLeases } from '../ports/state.js';
import { jobKey, parseJobMessage } from './job.js';

export interface RedriveSummary {
  readonly redriven: readonly string[];
  /** The runs the redriven jobs belong to: they are unfinished again. */
  readonly runs: readonly string[];
  readonly left: readonly { id: string; jobKey?: string; reason: string }[];
}

/**
 * Puts dead letters back on the job queue: each FAILED job is made PENDING again so
 * its next delivery runs it. A message that is not a job, or whose job finished
 * meanwhile, stays where it is, with the reason.
 */
export async function redrive(
  queue: Pick<QueueAdmin, 'deadLetters' | 'redrive'>,
  state: Pick<JobLeases, 'reopenJob' | 'getJob'>,
  filter: { readonly runId?: string; readonly dryRun?: boolean } = {},
): Promise<RedriveSummary> {
  const redriven: string[] = [];
  const runs = new Set<string>();
  const left: { id: string; jobKey?: string; reason: string }[] = [];
  for (const letter of await queue.deadLetters()) {
    const parsed = parseJobMessage(letter.body);
    if (!parsed.ok) {
      left.push({ id: letter.id, reason: `not a job message (${parsed.reason}); fix or delete it by hand` });
      continue;
    }
    const { runId } = parsed.message;
    if (filter.runId && runId !== filter.runId) continue;
    const key = jobKey(parsed.message.issue);
    if (filter.dryRun) {
      redriven.push(key);
      runs.add(runId);
      continue;
    }
    const reopened = await state.reopenJob(runId, key);
    const job = reopened === 'reopened' ? undefined : await state.getJob(runId, key);
    if (job && job.status !== 'PENDING' && job.status !== 'RUNNING') {
      left.push({ id: letter.id, jobKey: key, reason: `the job is ${job.status} already` });
      continue;
    }
    await queue.redrive([letter.id]);
    redriven.push(key);
    runs.add(runId);
  }
  return { redriven, runs: [...runs], left };
}
