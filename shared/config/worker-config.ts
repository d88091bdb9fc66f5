import { z } from 'zod';
import { type AgentConfig, AgentConfigSchema, DEFAULT_AGENT } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';

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
  FANOUT_TABLE_NAME: z.string().min(3, 'must name the state table, e.g. fanout-state'),
  FANOUT_BUCKET_NAME: z.string().min(3, 'must name the workspace bucket'),
  FANOUT_QUEUE_URL: z
    .string()
    .url('must be the job queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/jobs'),
  FANOUT_DLQ_URL: z.string().url('must be the dead-letter queue URL'),
  FANOUT_MAX_RECEIVE_COUNT: z.coerce.number().int().min(1).max(1000),
  FANOUT_WORKERS: z.coerce.number().int().min(1).max(1000).default(5),
  FANOUT_LEASE_SECONDS: z.coerce.number().int().min(5).max(900).default(60),
  FANOUT_SCRATCH_DIR: z.string().min(1).default('/tmp'),
  FANOUT_AGENT: json.pipe(AgentConfigSchema).optional(),
  // Only for S3-compatible engines addressed by IP (tests, local): AWS uses virtual-hosted style.
  FANOUT_S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).default('false'),
  FANOUT_GITHUB_TOKEN_SECRET: z.string().min(1).optional(),
  FANOUT_GITHUB_API_URL: z
    .string()
    .url('must be a GitHub API root, e.g. https://github.example.com/api/v3')
    .optional(),
  FANOUT_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  FANOUT_STACK_NAME: z.string().min(1).optional(),
});

export interface WorkerConfig {
  readonly tableName: string;
  readonly bucketName: string;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
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
    tableName: e.FANOUT_TABLE_NAME,
    bucketName: e.FANOUT_BUCKET_NAME,
    queueUrl: e.FANOUT_QUEUE_URL,
    deadLetterQueueUrl: e.FANOUT_DLQ_URL,
    maxReceiveCount: e.FANOUT_MAX_RECEIVE_COUNT,
    workers: e.FANOUT_WORKERS,
    leaseMs: e.FANOUT_LEASE_SECONDS * 1000,
    scratchDir: e.FANOUT_SCRATCH_DIR,
    agent: e.FANOUT_AGENT ?? DEFAULT_AGENT,
    s3ForcePathStyle: e.FANOUT_S3_FORCE_PATH_STYLE === 'true',
    ...(e.FANOUT_GITHUB_TOKEN_SECRET ? { githubTokenSecret: e.FANOUT_GITHUB_TOKEN_SECRET } : {}),
    ...(e.FANOUT_GITHUB_API_URL ? { githubApiUrl: e.FANOUT_GITHUB_API_URL } : {}),
    retentionDays: e.FANOUT_RETENTION_DAYS,
    ...(e.FANOUT_STACK_NAME ? { stackName: e.FANOUT_STACK_NAME } : {}),
  };
}
