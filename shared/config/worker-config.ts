import { z } from 'zod';
import { WORKER_ENV } from '../contracts/worker-env.js';
import { type AgentConfig, AgentConfigSchema, DEFAULT_AGENT } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';
import type { Priority } from '../domain/job.js';

const json = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not JSON' });
    return z.NEVER;
  }
});

/** The Lambda worker's environment, as the stack sets it. */
const WorkerEnvSchema = z.object({
  [WORKER_ENV.tableName]: z.string().min(3, 'must name the state table, e.g. fanout-state'),
  [WORKER_ENV.bucketName]: z.string().min(3, 'must name the workspace bucket'),
  [WORKER_ENV.queueUrl]: z
    .string()
    .url('must be the job queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/jobs'),
  [WORKER_ENV.deadLetterQueueUrl]: z.string().url('must be the dead-letter queue URL'),
  [WORKER_ENV.highLaneUrl]: z.string().url('must be the high-priority lane queue URL').optional(),
  [WORKER_ENV.normalLaneUrl]: z.string().url('must be the normal-priority lane queue URL').optional(),
  [WORKER_ENV.maxReceiveCount]: z.coerce.number().int().min(1).max(1000),
  [WORKER_ENV.workers]: z.coerce.number().int().min(1).max(1000).default(5),
  [WORKER_ENV.leaseSeconds]: z.coerce.number().int().min(5).max(900).default(60),
  [WORKER_ENV.scratchDir]: z.string().min(1).default('/tmp'),
  [WORKER_ENV.agent]: json.pipe(AgentConfigSchema).optional(),
  // Only for S3-compatible engines addressed by IP (tests, local): AWS uses virtual-hosted style.
  [WORKER_ENV.s3ForcePathStyle]: z.enum(['true', 'false']).default('false'),
  [WORKER_ENV.githubTokenSecret]: z.string().min(1).optional(),
  [WORKER_ENV.githubApiUrl]: z
    .string()
    .url('must be a GitHub API root, e.g. https://github.example.com/api/v3')
    .optional(),
  [WORKER_ENV.retentionDays]: z.coerce.number().int().min(1).max(3650).default(30),
  [WORKER_ENV.stackName]: z.string().min(1).optional(),
  [WORKER_ENV.sandboxFunction]: z.string().min(1).optional(),
  [WORKER_ENV.sandboxMicrosPerSecond]: z.coerce.number().int().nonnegative().optional(),
});

export interface WorkerConfig {
  readonly tableName: string;
  readonly bucketName: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  /** The priority lanes' queue URLs (none: jobs start in the queue's order). */
  readonly laneUrls: Partial<Record<Priority, string>>;
  readonly maxReceiveCount: number;
  /** Worker slots worker-01..N: the stack's worker count. */
  readonly workers: number;
  readonly leaseMs: number;
  /** Emptied before each job: Lambda reuses /tmp between invocations (pitfall 8). */
  readonly scratchDir: string;
  readonly agent: AgentConfig;
  readonly s3ForcePathStyle: boolean;
  /** The Secrets Manager secret holding the GitHub token, read by the worker at cold start. */
  readonly githubTokenSecret?: string;
  /** The GitHub API root (GitHub Enterprise); github.com's when unset. */
  readonly githubApiUrl?: string;
  /** Days a state record is kept before DynamoDB's TTL may delete it. */
  readonly retentionDays: number;
  /** The stack, as a dimension of every metric: two stacks in one account keep their alarms apart. */
  readonly stackName?: string;
  /** The stack's sandbox function and what a second of it costs (`-c sandbox=lambda`). */
  readonly sandbox?: { readonly functionName: string; readonly microsPerSecond: number };
}

/** Reads the worker's configuration once; every bad variable is named in one error. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const parsed = WorkerEnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new FanoutError('INVALID_INPUT', `worker configuration is invalid:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  return {
    tableName: e[WORKER_ENV.tableName],
    bucketName: e[WORKER_ENV.bucketName],
    queueUrl: e[WORKER_ENV.queueUrl],
    deadLetterQueueUrl: e[WORKER_ENV.deadLetterQueueUrl],
    laneUrls: {
      ...(e[WORKER_ENV.highLaneUrl] ? { high: e[WORKER_ENV.highLaneUrl] } : {}),
      ...(e[WORKER_ENV.normalLaneUrl] ? { normal: e[WORKER_ENV.normalLaneUrl] } : {}),
    },
    maxReceiveCount: e[WORKER_ENV.maxReceiveCount],
    workers: e[WORKER_ENV.workers],
    leaseMs: e[WORKER_ENV.leaseSeconds] * 1000,
    scratchDir: e[WORKER_ENV.scratchDir],
    agent: e[WORKER_ENV.agent] ?? DEFAULT_AGENT,
    s3ForcePathStyle: e[WORKER_ENV.s3ForcePathStyle] === 'true',
    ...(e[WORKER_ENV.githubTokenSecret] ? { githubTokenSecret: e[WORKER_ENV.githubTokenSecret] } : {}),
    ...(e[WORKER_ENV.githubApiUrl] ? { githubApiUrl: e[WORKER_ENV.githubApiUrl] } : {}),
    retentionDays: e[WORKER_ENV.retentionDays],
    ...(e[WORKER_ENV.stackName] ? { stackName: e[WORKER_ENV.stackName] } : {}),
    ...(e[WORKER_ENV.sandboxFunction]
      ? {
          sandbox: {
            functionName: e[WORKER_ENV.sandboxFunction] as string,
            microsPerSecond: e[WORKER_ENV.sandboxMicrosPerSecond] ?? 0,
          },
        }
      : {}),
  };
}
