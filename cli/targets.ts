import { readFileSync } from 'node:fs';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { dynamoState } from '../shared/adapters/dynamo/index.js';
import { S3WorkspaceStore } from '../shared/adapters/s3-workspace.js';
import { SqsJobQueue, SqsQueueAdmin } from '../shared/adapters/sqs-queue.js';
import { STACK_OUTPUT } from '../shared/contracts/stack-outputs.js';
import { FanoutError } from '../shared/domain/errors.js';
import type { Priority } from '../shared/domain/job.js';
import { type DeadLetterRow, deadLetterRows, type RunReport } from '../shared/domain/report.js';
import { adoptRun, openStateDir, readCurrentRun, statePath } from '../shared/local/state-dir.js';
import type { QueueAdmin } from '../shared/ports/queue.js';
import type { StatePort } from '../shared/ports/state.js';
import type { WorkspaceStore } from '../shared/ports/workspace.js';

/** Where `send`, `status` and `report` act: a deployed stack, a queue by URL, or the local state dir. */
export interface Target {
  readonly description: string;
  readonly state: StatePort;
  readonly workspaces: WorkspaceStore;
  /** The queue's operator side: send, depths, dead letters, redrive. */
  readonly queue: QueueAdmin;
  /** The run's dead letters for its report (none on AWS: reading SQS's would hide them). */
  deadLetters(runId: string): Promise<DeadLetterRow[]>;
  /** The run a command means when none is named. */
  defaultRunId(): Promise<string | undefined>;
  /** Called after a send, so `fanout run` drains the run sent to (local only). */
  adopt(runId: string, budgetMicros?: number): void;
  /** The queue can lose messages (the local journal): each job's message is also kept in its workspace. */
  readonly keepsMessages: boolean;
  /** The report a local run wrote at its end (runs/<run>/report.json): its own measure of its timing. */
  savedReport?(runId: string): RunReport | undefined;
  /** Whether a fleet works on the target now: false for a local state dir no `fanout run` owns; unknown on AWS. */
  readonly running?: boolean;
  /** What a deployed stack says of itself (its outputs); undefined for a queue by URL or a local target. */
  readonly stack?: StackFacts;
  close(): Promise<void>;
}

/** The target flags, shared by send, status and report. */
export const TARGET_OPTIONS = {
  local: { type: 'boolean' },
  'state-dir': { type: 'string' },
  stack: { type: 'string' },
  'queue-url': { type: 'string' },
  'dlq-url': { type: 'string' },
  table: { type: 'string' },
  bucket: { type: 'string' },
} as const;

export const TARGET_HELP = `Target (one of):
  --local                the local state dir that \`fanout run\` drains (--state-dir, default .fanout)
  --stack NAME           a deployed fanout stack (its outputs name the queue, table and bucket)
  --queue-url URL        a queue by URL, with --table NAME and --bucket NAME (and --dlq-url URL)`;

export interface TargetFlags {
  readonly local?: boolean;
  readonly stack?: string;
  readonly 'queue-url'?: string;
  readonly 'dlq-url'?: string;
  readonly table?: string;
  readonly bucket?: string;
  readonly 'state-dir'?: string;
}

export interface AwsClients {
  readonly cloudFormation: CloudFormationClient;
  readonly sqs: SQSClient;
  readonly dynamodb: DynamoDBClient;
  readonly s3: S3Client;
}

const defaultClients = (): AwsClients => ({
  cloudFormation: new CloudFormationClient({}),
  sqs: new SQSClient({}),
  dynamodb: new DynamoDBClient({}),
  s3: new S3Client({}),
});

/** Turns the SDK's failures to find credentials or a region into what to do about them. */
export function explainAwsError(error: unknown, what: string): never {
  const name = (error as Error)?.name ?? '';
  const message = (error as Error)?.message ?? String(error);
  if (error instanceof FanoutError) throw error;
  if (name === 'CredentialsProviderError' || /credential/i.test(message)) {
    throw new FanoutError(
      'INVALID_INPUT',
      `no AWS credentials to ${what}: run \`aws configure\` (or \`aws sso login\`), or set AWS_PROFILE; ` +
        'without an AWS account use --local',
      { cause: error },
    );
  }
  if (/region/i.test(message)) {
    throw new FanoutError('INVALID_INPUT', `no AWS region to ${what}: set AWS_REGION (e.g. us-east-1)`, {
      cause: error,
    });
  }
  throw new FanoutError('STATE_UNAVAILABLE', `cannot ${what}: ${name}: ${message}`, { cause: error });
}

/** The settings a deployed stack publishes, which `fanout send` must respect. */
export interface StackFacts {
  /** The default budget of a run (context key budgetUsd). */
  readonly budgetUsd?: number;
  readonly workers?: number;
  readonly timeoutSeconds?: number;
  /** Days SQS keeps a waiting job before it drops it. */
  readonly queueRetentionDays?: number;
  /** The one Bedrock model the workers may invoke, or 'none'. */
  readonly agentModel?: string;
  /** 'lambda' when the stack has a sandbox function; 'none' (or absent, a stack older than it) otherwise. */
  readonly sandbox?: string;
}

interface StackOutputs {
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly laneUrls?: Partial<Record<Priority, string>>;
  readonly tableName: string;
  readonly bucketName: string;
  readonly facts?: StackFacts;
}

const numberOutput = (value: string | undefined) => {
  const n = value === undefined ? Number.NaN : Number(value);
  return Number.isFinite(n) ? n : undefined;
};

/** Reads the queue, table and bucket a fanout stack publishes as outputs. */
export async function readStackOutputs(
  client: CloudFormationClient,
  stackName: string,
): Promise<StackOutputs> {
  let outputs: Record<string, string>;
  try {
    const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries(
      (Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
    );
  } catch (error) {
    if ((error as Error).name === 'ValidationError' && /does not exist/.test((error as Error).message)) {
      throw new FanoutError(
        'INVALID_INPUT',
        `stack "${stackName}" does not exist in this account and region: deploy it with \`npx cdk deploy\`, ` +
          'or check --stack and AWS_REGION',
        { cause: error },
      );
    }
    explainAwsError(error, `read stack "${stackName}"`);
  }
  const wanted = [
    STACK_OUTPUT.queueUrl,
    STACK_OUTPUT.deadLetterQueueUrl,
    STACK_OUTPUT.tableName,
    STACK_OUTPUT.bucketName,
  ];
  const missing = wanted.filter((key) => !outputs[key]);
  if (missing.length > 0) {
    throw new FanoutError(
      'INVALID_INPUT',
      `stack "${stackName}" has no ${missing.join(', ')} output(s): is it a fanout stack? Deploy this project's stack`,
    );
  }
  const facts: Record<string, number | string | undefined> = {
    budgetUsd: numberOutput(outputs[STACK_OUTPUT.budgetUsd]),
    workers: numberOutput(outputs[STACK_OUTPUT.workerCount]),
    timeoutSeconds: numberOutput(outputs[STACK_OUTPUT.timeoutSeconds]),
    queueRetentionDays: numberOutput(outputs[STACK_OUTPUT.queueRetentionDays]),
    agentModel: outputs[STACK_OUTPUT.agentModel],
    sandbox: outputs[STACK_OUTPUT.sandbox],
  };
  return {
    queueUrl: outputs[STACK_OUTPUT.queueUrl] as string,
    deadLetterQueueUrl: outputs[STACK_OUTPUT.deadLetterQueueUrl] as string,
    // A stack deployed before the lanes has none: its jobs start in the queue's order.
    laneUrls: {
      ...(outputs[STACK_OUTPUT.highLaneUrl] ? { high: outputs[STACK_OUTPUT.highLaneUrl] } : {}),
      ...(outputs[STACK_OUTPUT.normalLaneUrl] ? { normal: outputs[STACK_OUTPUT.normalLaneUrl] } : {}),
    },
    tableName: outputs[STACK_OUTPUT.tableName] as string,
    bucketName: outputs[STACK_OUTPUT.bucketName] as string,
    facts: Object.fromEntries(Object.entries(facts).filter(([, v]) => v !== undefined)) as StackFacts,
  };
}

function awsTarget(description: string, outputs: StackOutputs, clients: AwsClients): Target {
  const state = dynamoState({ tableName: outputs.tableName, client: clients.dynamodb });
  const queues = {
    client: clients.sqs,
    queueUrl: outputs.queueUrl,
    deadLetterQueueUrl: outputs.deadLetterQueueUrl,
    ...(outputs.laneUrls ? { laneUrls: outputs.laneUrls } : {}),
  };
  return {
    description,
    state,
    workspaces: new S3WorkspaceStore({ client: clients.s3, bucket: outputs.bucketName }),
    queue: new SqsQueueAdmin(new SqsJobQueue(queues), queues),
    // On AWS the dead-letter queue is not read for a report (that would hide its messages); failed jobs carry their reasons.
    deadLetters: async () => [],
    defaultRunId: async () => (await state.listRuns(1))[0]?.runId,
    adopt: () => {},
    keepsMessages: false,
    ...(outputs.facts ? { stack: outputs.facts } : {}),
    close: async () => {},
  };
}

/** Opens the target the flags name; exactly one of --local, --stack, --queue-url. */
export async function openTarget(
  flags: TargetFlags,
  clients: AwsClients = defaultClients(),
  /** Create the local state dir if it does not exist (send does; status, report and redrive do not). */
  createLocal = true,
): Promise<Target> {
  const chosen = [flags.local, flags.stack, flags['queue-url']].filter(Boolean).length;
  if (chosen !== 1) {
    throw new FanoutError(
      'INVALID_INPUT',
      'name one target: --local, --stack NAME, or --queue-url URL (with --table and --bucket)',
    );
  }
  if (flags.stack) {
    const outputs = await readStackOutputs(clients.cloudFormation, flags.stack);
    return awsTarget(`stack ${flags.stack}`, outputs, clients);
  }
  if (flags['queue-url']) {
    const missing = (['table', 'bucket'] as const).filter((k) => !flags[k]);
    if (missing.length > 0) {
      throw new FanoutError(
        'INVALID_INPUT',
        `--queue-url also needs ${missing.map((m) => `--${m}`).join(' and ')}`,
      );
    }
    return awsTarget(
      `queue ${flags['queue-url']}`,
      {
        queueUrl: flags['queue-url'],
        deadLetterQueueUrl: flags['dlq-url'] ?? flags['queue-url'],
        tableName: flags.table as string,
        bucketName: flags.bucket as string,
      },
      clients,
    );
  }
  const stateDir = flags['state-dir'] ?? '.fanout';
  return localTarget(stateDir, createLocal);
}

/**
 * Opens the target the flags name (the local state dir when they name none), runs
 * `use` on it, and closes it whatever happens.
 */
export async function withTarget<T>(
  flags: TargetFlags,
  aws: AwsClients | undefined,
  use: (target: Target) => Promise<T>,
): Promise<T> {
  const named = flags.local || flags.stack || flags['queue-url'];
  const target = await openTarget(named ? flags : { ...flags, local: true }, aws, false);
  try {
    return await use(target);
  } finally {
    await target.close();
  }
}

/** The local state dir as a target; through the live `fanout run` if one is running. */
export async function localTarget(stateDir: string, create: boolean): Promise<Target> {
  const local = await openStateDir(stateDir, {
    create,
    command: create ? 'send' : 'status, report or redrive',
  });
  return {
    description: local.live ? `the running fanout run in ${stateDir}` : `the local state in ${stateDir}`,
    state: local.state,
    workspaces: local.workspaces,
    queue: local.queue,
    deadLetters: async (runId) => deadLetterRows(await local.queue.deadLetters(), runId, 0),
    defaultRunId: async () => readCurrentRun(stateDir)?.runId,
    // A live run drains whatever is sent to the queue; otherwise the next `fanout run` resumes this run.
    adopt: (runId, budgetMicros) => {
      if (!local.live) adoptRun(stateDir, runId, budgetMicros);
    },
    keepsMessages: true,
    running: local.live,
    savedReport: (runId) => {
      try {
        return JSON.parse(
          readFileSync(statePath(stateDir, 'runs', runId, 'report.json'), 'utf8'),
        ) as RunReport;
      } catch {
        return undefined;
      }
    },
    close: () => local.close(),
  };
}
