import type { JobQueue } from '../ports/queue.js';
import type { JobLeases, RunLedger } from '../ports/state.js';
import type { WorkspaceStore } from '../ports/workspace.js';
import type { AgentConfig } from './agent-settings.js';
import { FanoutError } from './errors.js';
import {
  canonicalRepo,
  ISSUE_BODY_FILE,
  type Issue,
  JOB_MESSAGE_FILE,
  type JobMessage,
  jobKey,
  jobPrefix,
  MAX_MESSAGE_BYTES,
  type Priority,
  priorityOf,
  queueEntry,
} from './job.js';
import { repoLedgerId } from './ledger.js';
import { formatUsd } from './units.js';

export interface SendDeps {
  readonly state: RunLedger & JobLeases;
  readonly queue: Pick<JobQueue, 'send'>;
  readonly workspaces: WorkspaceStore;
  readonly clock: () => number;
}

export interface SendFailure {
  readonly jobKey: string;
  readonly code: string;
  readonly message: string;
}

export interface SendSummary {
  readonly runId: string;
  readonly runCreated: boolean;
  /** The run's budget (its own, when the run existed). */
  readonly budgetMicros: number;
  /** Each repository's budget within the run's, when the run has one. */
  readonly repoBudgetMicros?: number;
  /** Jobs whose message reached the queue in this send. */
  readonly sent: readonly string[];
  /** Of those, jobs an earlier send registered but never got onto the queue. */
  readonly resent: readonly string[];
  /** Already in the run and sent before: nothing sent again. */
  readonly duplicates: readonly string[];
  /** Bodies too large for a message, kept in the job's workspace instead. */
  readonly offloaded: readonly string[];
  readonly failed: readonly SendFailure[];
  readonly dryRun: boolean;
}

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/**
 * A message for the issue. A body that would take the message over the queue's
 * limit is left out of it, and the message says where the whole body is kept.
 */
export function buildMessage(
  runId: string,
  issue: Issue,
  now: number,
  agent?: AgentConfig,
  priority: Priority = 'normal',
  repoBudgetMicros?: number,
): { message: JobMessage; offload: boolean } {
  const whole: JobMessage = {
    v: 1,
    runId,
    issue,
    sentAt: now,
    ...(agent ? { agent } : {}),
    ...(priority !== 'normal' ? { priority } : {}),
    ...(repoBudgetMicros !== undefined ? { repoBudgetMicros } : {}),
  };
  if (bytes(JSON.stringify(whole)) <= MAX_MESSAGE_BYTES) return { message: whole, offload: false };
  return { message: { ...whole, issue: { ...issue, body: '' }, bodyRef: ISSUE_BODY_FILE }, offload: true };
}

/**
 * Sends a validated backlog to a run: creates the run if new, registers each job
 * (a job already sent is a duplicate and is not sent again), puts large bodies in
 * the workspace, sends the messages (the queue batches and retries), and notes each
 * job that reached the queue, so a send that stopped half-way can be repeated.
 */
export async function sendIssues(
  issues: readonly Issue[],
  run: {
    readonly runId: string;
    readonly budgetMicros: number;
    /** The budget was asked for (a flag), not a default: an existing run with another budget is refused. */
    readonly budgetGiven?: boolean;
    readonly agent?: AgentConfig;
    /** Every job's priority (`--priority`); without it, each issue's `priority:` label's, else normal. */
    readonly priority?: Priority;
    /**
     * Each repository's budget within the run's, for a new run (`--repo-budget-usd`); an
     * existing run keeps the one it was created with, and one asked for later is refused.
     */
    readonly repoBudgetMicros?: number;
    /** Budget shards for a new run (the ledger's default when absent). */
    readonly ledgerShards?: number;
  },
  deps: SendDeps,
  options: {
    readonly dryRun?: boolean;
    /** Keep each message in its job's workspace, so a lost queue can be rebuilt (the local queue). */
    readonly keepMessages?: boolean;
  } = {},
): Promise<SendSummary> {
  const { state, clock } = deps;
  const now = clock();
  const duplicates: string[] = [];
  const resent: string[] = [];
  const offloaded: string[] = [];
  const failed: SendFailure[] = [];
  const toSend: { key: string; message: JobMessage; issue: Issue; offload: boolean }[] = [];

  if (options.dryRun) {
    const existing = await state.getRun(run.runId);
    const known = new Map(existing ? (await state.listJobs(run.runId)).map((j) => [j.jobKey, j]) : []);
    const sent: string[] = [];
    for (const issue of issues) {
      const key = jobKey(issue);
      const job = known.get(key);
      if (job?.enqueuedAt !== undefined || (job && job.status !== 'PENDING')) duplicates.push(key);
      else {
        sent.push(key);
        if (buildMessage(run.runId, issue, now, run.agent).offload) offloaded.push(key);
      }
    }
    return {
      runId: run.runId,
      runCreated: !existing,
      budgetMicros: existing?.budgetMicros ?? run.budgetMicros,
      sent,
      resent,
      duplicates,
      offloaded,
      failed,
      dryRun: true,
    };
  }

  // A repository's budget is within the run's: checked before a new run is made with it.
  if (run.repoBudgetMicros !== undefined && run.repoBudgetMicros > run.budgetMicros) {
    const budget = (await state.getRun(run.runId))?.budgetMicros ?? run.budgetMicros;
    if (run.repoBudgetMicros > budget) {
      throw new FanoutError(
        'INVALID_INPUT',
        `a repository's budget (${formatUsd(run.repoBudgetMicros)}) cannot be more than the run's (${formatUsd(budget)}): ` +
          'lower --repo-budget-usd or raise --budget-usd',
      );
    }
  }
  const runCreated =
    (await state.createRun({
      runId: run.runId,
      budgetMicros: run.budgetMicros,
      createdAt: now,
      ...(run.ledgerShards ? { ledgerShards: run.ledgerShards } : {}),
      ...(run.repoBudgetMicros !== undefined ? { repoBudgetMicros: run.repoBudgetMicros } : {}),
    })) === 'created';
  const existing = runCreated ? undefined : await state.getRun(run.runId);
  if (existing && run.budgetGiven) {
    // A run's budget is set once: a different one asked for later is refused, never silently dropped.
    if (existing.budgetMicros !== run.budgetMicros) {
      throw new FanoutError(
        'INVALID_INPUT',
        `run ${run.runId} exists with a budget of ${formatUsd(existing.budgetMicros)}; a run keeps the budget ` +
          'it was created with: leave out --budget-usd, or start a new run with another --run-id',
      );
    }
  }
  if (existing && run.repoBudgetMicros !== undefined && existing.repoBudgetMicros !== run.repoBudgetMicros) {
    throw new FanoutError(
      'INVALID_INPUT',
      `run ${run.runId} exists ${
        existing.repoBudgetMicros === undefined
          ? 'without a per-repository budget'
          : `with a per-repository budget of ${formatUsd(existing.repoBudgetMicros)}`
      }; a run keeps the one it was created with: leave out --repo-budget-usd, or start a new run with another --run-id`,
    );
  }
  const repoBudgetMicros = existing ? existing.repoBudgetMicros : run.repoBudgetMicros;
  if (repoBudgetMicros !== undefined) {
    // Each repository's ledger, before any of its jobs can reserve in it (created once per run).
    for (const repo of new Set(issues.map((issue) => canonicalRepo(issue.repo)))) {
      await state.createRun({
        runId: repoLedgerId(run.runId, repo),
        budgetMicros: repoBudgetMicros,
        createdAt: now,
        listed: false,
      });
    }
  }
  let created = 0;
  for (const issue of issues) {
    const key = jobKey(issue);
    const registered = await state.registerJob({
      runId: run.runId,
      jobKey: key,
      title: issue.title,
      registeredAt: now,
      priority: priorityOf(issue, run.priority),
    });
    if (registered === 'exists') {
      duplicates.push(key);
      continue;
    }
    if (registered === 'created') created++;
    else resent.push(key);
    toSend.push({
      key,
      issue,
      ...buildMessage(run.runId, issue, now, run.agent, priorityOf(issue, run.priority), repoBudgetMicros),
    });
  }
  if (created > 0) await state.addJobCount(run.runId, created);

  const ready: typeof toSend = [];
  for (const item of toSend) {
    if (!item.offload && !options.keepMessages) {
      ready.push(item);
      continue;
    }
    const workspace = deps.workspaces.open(jobPrefix(run.runId, item.issue));
    try {
      if (item.offload) await workspace.write(ISSUE_BODY_FILE, item.issue.body);
      if (options.keepMessages) await workspace.write(JOB_MESSAGE_FILE, JSON.stringify(item.message));
      if (item.offload) offloaded.push(item.key);
      ready.push(item);
    } catch (error) {
      failed.push({ jobKey: item.key, code: 'WORKSPACE_WRITE_FAILED', message: (error as Error).message });
    }
  }

  const result = await deps.queue.send(ready.map((item) => queueEntry(item.message)));
  for (const failure of result.failed)
    failed.push({ jobKey: failure.id, code: failure.code, message: failure.message });
  const sentAt = clock();
  for (let i = 0; i < result.sent.length; i += 25) {
    await Promise.all(result.sent.slice(i, i + 25).map((key) => state.markEnqueued(run.runId, key, sentAt)));
  }
  return {
    runId: run.runId,
    runCreated,
    budgetMicros: existing?.budgetMicros ?? run.budgetMicros,
    ...(repoBudgetMicros !== undefined ? { repoBudgetMicros } : {}),
    sent: result.sent,
    resent: resent.filter((key) => result.sent.includes(key)),
    duplicates,
    offloaded,
    failed,
    dryRun: false,
  };
}

export function formatSendSummary(summary: SendSummary): string {
  const verb = summary.dryRun ? 'would send' : 'sent';
  const lines = [
    `Run ${summary.runId}${summary.runCreated ? ' (new)' : ''}: ${verb} ${summary.sent.length}, ` +
      `${summary.duplicates.length} already sent (nothing sent again), ${summary.failed.length} failed`,
  ];
  if (summary.repoBudgetMicros !== undefined) {
    lines.push(
      `  budget ${formatUsd(summary.budgetMicros)}, each repository at most ${formatUsd(summary.repoBudgetMicros)} of it`,
    );
  }
  if (summary.resent.length > 0)
    lines.push(`  ${summary.resent.length} of them had been registered by a send that did not finish`);
  if (summary.offloaded.length > 0) {
    lines.push(
      `  ${summary.offloaded.length} bodies too large for a message are in their workspaces (${ISSUE_BODY_FILE})`,
    );
  }
  if (summary.dryRun) for (const key of summary.sent) lines.push(`  ${key}`);
  for (const failure of summary.failed)
    lines.push(`  FAILED ${failure.jobKey}: ${failure.code}: ${failure.message}`);
  if (!summary.dryRun && summary.sent.length === 0 && summary.failed.length === 0) {
    lines.push('  Nothing new to send: every issue is already in the run.');
  }
  if (summary.failed.length > 0)
    lines.push('  Send again to retry the failed ones: jobs already sent are not sent twice.');
  return lines.join('\n');
}
