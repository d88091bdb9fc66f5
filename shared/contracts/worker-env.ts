/**
 * The Lambda worker's environment variables: set by infra/constructs/workers.ts, read and
 * validated by shared/config/worker-config.ts.
 */
export const WORKER_ENV = {
  tableName: 'FANOUT_TABLE_NAME',
  bucketName: 'FANOUT_BUCKET_NAME',
  queueUrl: 'FANOUT_QUEUE_URL',
  deadLetterQueueUrl: 'FANOUT_DLQ_URL',
  /** The priority lanes' queues (README, "Priorities"). */
  highLaneUrl: 'FANOUT_HIGH_LANE_URL',
  normalLaneUrl: 'FANOUT_NORMAL_LANE_URL',
  maxReceiveCount: 'FANOUT_MAX_RECEIVE_COUNT',
  workers: 'FANOUT_WORKERS',
  leaseSeconds: 'FANOUT_LEASE_SECONDS',
  scratchDir: 'FANOUT_SCRATCH_DIR',
  /** The agent's settings as JSON (AgentConfig). */
  agent: 'FANOUT_AGENT',
  s3ForcePathStyle: 'FANOUT_S3_FORCE_PATH_STYLE',
  githubTokenSecret: 'FANOUT_GITHUB_TOKEN_SECRET',
  githubApiUrl: 'FANOUT_GITHUB_API_URL',
  retentionDays: 'FANOUT_RETENTION_DAYS',
  stackName: 'FANOUT_STACK_NAME',
  /** The sandbox function the worker may invoke (`-c sandbox=lambda`); none: no sandbox. */
  sandboxFunction: 'FANOUT_SANDBOX_FUNCTION',
  /** What a second of the sandbox function costs (its memory's GB-second price), in micro-USD. */
  sandboxMicrosPerSecond: 'FANOUT_SANDBOX_MICROS_PER_SECOND',
} as const;
