import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO_MODEL, MODEL_ID_PATTERN } from '../shared/agents/model-ids.js';

const ROOT = new URL('../', import.meta.url).pathname;

/** The stack's settings: each from CDK context (`-c key=value` or cdk.json), validated once. */
export interface FanoutSettings {
  /** Lambda workers: reserved concurrency and event-source maxConcurrency. @default 5 */
  readonly workers: number;
  /** Default budget of a run in USD, and the base of the spend alarm. @default 50 */
  readonly budgetUsd: number;
  /** Worker function timeout. @default 900 */
  readonly timeoutSeconds: number;
  /** Worker memory. @default 1024 */
  readonly memoryMb: number;
  /** Records per invocation. @default 1 */
  readonly batchSize: number;
  /** Deliveries before a message goes to the dead-letter queue. @default 5 */
  readonly maxReceiveCount: number;
  /** Days before a run's workspace objects expire. @default 30 */
  readonly workspaceRetentionDays: number;
  /**
   * Reserve `workers` of the account's concurrency for the workers. Off by default: a new
   * account's quota (often 10) leaves nothing to reserve and the deploy would fail. @default false
   */
  readonly reserveConcurrency: boolean;
  /** Alarm when a day's spend passes this share of the budget, in percent. @default 80 */
  readonly spendAlarmPercent: number;
  /** Alarm when the oldest waiting job is older than this. @default 60 */
  readonly oldestMessageAlarmMinutes: number;
  /** Where alarms are emailed; none when unset. */
  readonly alarmEmail?: string;
  /** The Bedrock model (or inference profile, `us.anthropic...`) the llm agent uses; the simulate agent when unset. */
  readonly agentModel?: string;
  /** What the worker does with a finished patch (llm agent). @default none */
  readonly publish?: 'none' | 'comment' | 'pr';
  /** Name of the Secrets Manager secret that holds the GitHub token; only the worker reads it. */
  readonly githubTokenSecret?: string;
  /** ARN of the customer managed KMS key that encrypts that secret, if it is not AWS managed. */
  readonly githubTokenKmsKeyArn?: string;
  /** Where the llm agent's commands run: nowhere, or a sandbox function (README, "The sandbox on AWS"). @default none */
  readonly sandbox: 'none' | 'lambda';
  /** The sandbox function's memory (its CPU follows). @default 2048 */
  readonly sandboxMemoryMb: number;
  /** A Dockerfile, relative to the project's root, to build the sandbox function from (needs Docker at deploy). */
  readonly sandboxImage?: string;
}

export const DEFAULTS: Omit<FanoutSettings, 'alarmEmail' | 'githubTokenKmsKeyArn' | 'sandboxImage'> = {
  workers: 5,
  budgetUsd: 50,
  timeoutSeconds: 900,
  memoryMb: 1024,
  batchSize: 1,
  maxReceiveCount: 5,
  workspaceRetentionDays: 30,
  reserveConcurrency: false,
  spendAlarmPercent: 80,
  oldestMessageAlarmMinutes: 60,
  sandbox: 'none',
  sandboxMemoryMb: 2048,
};

export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`fanout stack settings are invalid:\n  ${problems.join('\n  ')}`);
    this.name = 'SettingsError';
  }
}

type Lookup = (key: string) => unknown;

/** Reads and checks every setting, reporting all problems together. */
export function readSettings(lookup: Lookup): FanoutSettings {
  const problems: string[] = [];
  const integer = (key: keyof typeof DEFAULTS, min: number, max: number, hint = ''): number => {
    const raw = lookup(key);
    if (raw === undefined) return DEFAULTS[key] as number;
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${key} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}${hint}`);
    }
    return n;
  };
  const decimal = (key: keyof typeof DEFAULTS, min: number, max: number): number => {
    const raw = lookup(key);
    if (raw === undefined) return DEFAULTS[key] as number;
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isFinite(n) || n <= min || n > max) {
      problems.push(`${key} must be a number above ${min} and at most ${max}, not ${JSON.stringify(raw)}`);
    }
    return n;
  };
  const bool = (key: keyof typeof DEFAULTS): boolean => {
    const raw = lookup(key);
    if (raw === undefined) return DEFAULTS[key] as boolean;
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    problems.push(`${key} must be true or false, not ${JSON.stringify(raw)}`);
    return false;
  };

  const settings: FanoutSettings = {
    // The SQS event source's maxConcurrency cannot be below 2 (pitfall 1), so neither can this.
    workers: integer(
      'workers',
      2,
      1000,
      ' (the SQS event source runs at least 2 at once; for 1 worker use `fanout run` locally)',
    ),
    budgetUsd: decimal('budgetUsd', 0, 1_000_000),
    timeoutSeconds: integer('timeoutSeconds', 30, 900),
    memoryMb: integer('memoryMb', 128, 10_240),
    batchSize: integer('batchSize', 1, 10),
    maxReceiveCount: integer('maxReceiveCount', 1, 1000),
    workspaceRetentionDays: integer('workspaceRetentionDays', 1, 3650),
    reserveConcurrency: bool('reserveConcurrency'),
    spendAlarmPercent: integer('spendAlarmPercent', 1, 100),
    oldestMessageAlarmMinutes: integer('oldestMessageAlarmMinutes', 1, 20_160),
    sandbox: sandboxSetting(lookup('sandbox'), problems),
    sandboxMemoryMb: integer('sandboxMemoryMb', 512, 10_240),
  };
  const image = lookup('sandboxImage');
  if (image !== undefined) {
    if (settings.sandbox !== 'lambda')
      problems.push("sandboxImage needs sandbox=lambda: the image is the sandbox function's");
    else if (!existsSync(join(ROOT, String(image))))
      problems.push(
        `sandboxImage must be a Dockerfile of this project (relative to its root), e.g. infra/sandbox-image/Dockerfile; ${JSON.stringify(image)} does not exist`,
      );
  }
  const email = lookup('alarmEmail');
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(String(email))) {
    problems.push(`alarmEmail must be an email address, not ${JSON.stringify(email)}`);
  }
  const agentModel = lookup('agentModel');
  if (
    agentModel !== undefined &&
    String(agentModel) !== DEMO_MODEL &&
    !MODEL_ID_PATTERN.test(String(agentModel))
  ) {
    problems.push(
      'agentModel must be a Bedrock model id like anthropic.claude-sonnet-4-20250514-v1:0 or an inference ' +
        `profile like us.anthropic.claude-sonnet-4-5-20250929-v1:0, not ${JSON.stringify(agentModel)}`,
    );
  }
  const publish = lookup('publish');
  if (publish !== undefined && !['none', 'comment', 'pr'].includes(String(publish))) {
    problems.push(`publish must be none, comment or pr, not ${JSON.stringify(publish)}`);
  }
  const secret = lookup('githubTokenSecret');
  if (secret !== undefined && !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(String(secret))) {
    problems.push(`githubTokenSecret must be a Secrets Manager secret name, not ${JSON.stringify(secret)}`);
  }
  const kmsKey = lookup('githubTokenKmsKeyArn');
  if (
    kmsKey !== undefined &&
    !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(String(kmsKey))
  ) {
    problems.push(
      `githubTokenKmsKeyArn must be a KMS key ARN like arn:aws:kms:us-east-1:123456789012:key/..., not ${JSON.stringify(kmsKey)}`,
    );
  }
  if (kmsKey !== undefined && secret === undefined) {
    problems.push('githubTokenKmsKeyArn needs githubTokenSecret: the secret that key encrypts');
  }
  if ((publish === 'comment' || publish === 'pr') && secret === undefined) {
    problems.push('publish needs githubTokenSecret: the secret that holds a token with write access');
  }
  if (problems.length > 0) throw new SettingsError(problems);
  return {
    ...settings,
    ...(email === undefined ? {} : { alarmEmail: String(email) }),
    ...(agentModel === undefined ? {} : { agentModel: String(agentModel) }),
    ...(publish === undefined ? {} : { publish: String(publish) as 'none' | 'comment' | 'pr' }),
    ...(secret === undefined ? {} : { githubTokenSecret: String(secret) }),
    ...(kmsKey === undefined ? {} : { githubTokenKmsKeyArn: String(kmsKey) }),
    ...(image === undefined ? {} : { sandboxImage: String(image) }),
  };
}

function sandboxSetting(raw: unknown, problems: string[]): FanoutSettings['sandbox'] {
  if (raw === undefined || raw === 'none' || raw === 'lambda') return raw ?? DEFAULTS.sandbox;
  problems.push(`sandbox must be none or lambda, not ${JSON.stringify(raw)}`);
  return DEFAULTS.sandbox;
}

/** Queue visibility covers the function timeout six times over, as AWS advises (pitfall 3). */
export function visibilityTimeoutSeconds(settings: Pick<FanoutSettings, 'timeoutSeconds'>): number {
  return Math.min(43_200, settings.timeoutSeconds * 6);
}
