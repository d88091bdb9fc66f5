import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { SendEntry } from '../ports/queue.js';
import { AgentConfigSchema } from './agent-settings.js';
import { FanoutError } from './errors.js';

/** owner/name, as GitHub spells a repository. */
export const RepoNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must look like owner/name')
  .refine((repo) => repo.split('/').every((part) => part !== '.' && part !== '..'), 'must not use . or ..');

/**
 * How urgent a job is. A waiting job starts before every waiting job of a lower priority
 * (README, "Priorities"); within one priority the repositories share the workers fairly.
 */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export const PrioritySchema = z.enum(PRIORITIES);
export type Priority = z.infer<typeof PrioritySchema>;
/** The label prefix that sets an issue's priority (`priority:high`), when its send names none. */
export const PRIORITY_LABEL_PREFIX = 'priority:';

/**
 * An issue's priority: the send's when it names one, else its `priority:` label's (the first
 * that names a priority), else normal.
 */
export function priorityOf(issue: Pick<Issue, 'labels'>, given?: Priority): Priority {
  if (given) return given;
  for (const label of issue.labels) {
    if (!label.toLowerCase().startsWith(PRIORITY_LABEL_PREFIX)) continue;
    const parsed = PrioritySchema.safeParse(label.slice(PRIORITY_LABEL_PREFIX.length).trim().toLowerCase());
    if (parsed.success) return parsed.data;
  }
  return 'normal';
}

/** A run's id: it names a folder and a key prefix, so it is plain letters, digits, _ and -. */
export const RunIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -');

/** An issue as the user gives it (issues file, GitHub, mock). */
export const IssueSchema = z.object({
  repo: RepoNameSchema,
  number: z.number().int().positive(),
  title: z.string().min(1).max(1024),
  body: z.string().max(1_000_000).default(''),
  labels: z.array(z.string()).default([]),
  url: z.string().url().optional(),
});
export type Issue = z.infer<typeof IssueSchema>;

/** The repository and issue number of a job key (`owner/repo#12`). */
export function parseJobKey(key: string): { readonly repo: string; readonly number: number } {
  const hash = key.lastIndexOf('#');
  return { repo: key.slice(0, hash), number: Number(key.slice(hash + 1)) };
}

/** The job prefix of a job key (`owner/repo#12`). */
export function prefixForKey(runId: string, key: string): string {
  return jobPrefix(runId, parseJobKey(key));
}

/** SQS refuses a message over 256 KiB; fanout holds the local queue to the same limit. */
export const MAX_MESSAGE_BYTES = 262_144;
/** Where an issue body too large for a message is kept, in the job's workspace. */
export const ISSUE_BODY_FILE = 'issue-body.md';
/** Where a job's message is kept, in its workspace, when the queue may need rebuilding (locally). */
export const JOB_MESSAGE_FILE = 'job.json';

/** What goes on the queue: one issue of one run. */
export const JobMessageSchema = z.object({
  v: z.literal(1),
  runId: RunIdSchema,
  issue: IssueSchema,
  sentAt: z.number().int().nonnegative(),
  /** Set when the body was too large for the message: the file in the job's workspace that holds it. */
  bodyRef: z.literal(ISSUE_BODY_FILE).optional(),
  /** How many invocations this job has already used: a continuation resumes from its checkpoint. */
  continuation: z.number().int().min(1).optional(),
  /** Agent time the job's earlier invocations spent, carried by its continuations. */
  workedMs: z.number().int().nonnegative().optional(),
  /** Continuations in a row that were asked to checkpoint before they could work. */
  stalls: z.number().int().min(1).optional(),
  /** The run's agent settings, when `fanout send` chose them; the worker's own otherwise. */
  agent: AgentConfigSchema.optional(),
  /** Absent means normal. */
  priority: PrioritySchema.optional(),
  /** The run's budget for each repository (`--repo-budget-usd`): the job reserves in its repository's ledger too. */
  repoBudgetMicros: z.number().int().positive().optional(),
});
export type JobMessage = z.infer<typeof JobMessageSchema>;

/**
 * GitHub's owner and repository names are case-insensitive: `Acme/API` and `acme/api`
 * are one repository, so keys and folders use the lower-case form.
 */
export const canonicalRepo = (repo: string): string => repo.toLowerCase();

/** The idempotency key of a job: from the issue, never from the queue message (pitfall 5). */
export function jobKey(issue: Pick<Issue, 'repo' | 'number'>): string {
  return `${canonicalRepo(issue.repo)}#${issue.number}`;
}

/** Where a job's files live, relative to the workspace root (S3 bucket or folder). */
/** The longest MessageGroupId SQS takes (alphanumeric and punctuation characters, 1 to 128). */
export const MESSAGE_GROUP_MAX_CHARS = 128;

/**
 * The fairness group of a repository's jobs: the repository itself, which an owner of 39
 * characters and a name of 100 can make longer than SQS allows; such a name keeps its
 * first 115 characters and a digest of the whole, so two long names stay apart.
 */
export function messageGroupOf(repo: string): string {
  if (repo.length <= MESSAGE_GROUP_MAX_CHARS) return repo;
  return `${repo.slice(0, MESSAGE_GROUP_MAX_CHARS - 13)}~${createHash('sha256').update(repo).digest('base64url').slice(0, 12)}`;
}

/**
 * A job's message as the queue takes it: keyed by its job, in its repository's fairness
 * group. Every path that puts a job on the queue (send, a continuation, a repair) uses it.
 */
export function queueEntry(message: JobMessage): SendEntry {
  return {
    id: jobKey(message.issue),
    body: JSON.stringify(message),
    group: messageGroupOf(message.issue.repo),
    priority: message.priority ?? 'normal',
  };
}

export function jobPrefix(runId: string, issue: Pick<Issue, 'repo' | 'number'>): string {
  return `runs/${runId}/jobs/${canonicalRepo(issue.repo)}/${issue.number}/`;
}

/** Checks a run id given on the command line; the error names the flag and a good value. */
export function parseRunId(value: string, flag = '--run-id'): string {
  if (!RunIdSchema.safeParse(value).success) {
    throw new FanoutError('INVALID_INPUT', `${flag} must be 1-64 letters, digits, _ or -, not "${value}"`);
  }
  return value;
}

/** worker-01, worker-02, ...: worker identities, the same locally and on Lambda. */
export const slotName = (index: number) => `worker-${String(index + 1).padStart(2, '0')}`;

export function mockIssues(count: number): Issue[] {
  return Array.from({ length: count }, (_, i) => ({
    repo: 'mock/backlog',
    number: i + 1,
    title: `Mock issue ${i + 1}`,
    body: 'A generated issue for the simulate agent.',
    labels: ['mock'],
  }));
}

export function newRunId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return `run-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** A queue message's body as a job message, or why it is not one (a poison message). */
export function parseJobMessage(
  body: string,
): { ok: true; message: JobMessage } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    return { ok: false, reason: `body is not JSON: ${(error as Error).message}` };
  }
  const parsed = JobMessageSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return {
      ok: false,
      reason: `body is not a job message: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
    };
  }
  return { ok: true, message: parsed.data };
}
