/**
 * The deployed stack, as far as this machine can have it: the synthesized template,
 * the worker's exact esbuild bundle from the cloud assembly, the embedded engines and
 * the two fakes, each behind an IAM gate that enforces the template's policies.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Message, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { ensureTable } from '../../shared/adapters/dynamo/index.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import type { JobMessage } from '../../shared/domain/job.js';
import {
  lambdaEvent,
  receiveAll,
  type S3Fixture,
  type SqsFixture,
  startS3,
  startSqs,
} from './aws-engines.js';
import { type StateFixture, startState } from './engines.js';
import { type FakeTurn, startFakeBedrock, startFakeLambda, startFakeSecrets } from './fake-aws.js';
import { type Caller, type Gate, IamWorld, startGate } from './iam-gate.js';
import { synthStack } from './synth.js';
import { ACCOUNT, type PhysicalNames, TemplateResolver } from './template-policies.js';

export const TABLE = 'fanout-state';
export const BUCKET = 'fanout-workspaces';
export const SECRET = 'fanout/github-token';

/** The llm agent on the offline demo model, as a message carries it. */
export const demoLlmAgent = (extra: Record<string, unknown> = {}) => ({
  kind: 'llm' as const,
  model: 'scripted:demo',
  maxSteps: 10,
  maxOutputTokens: 1000,
  maxCostPerJobMicros: 1_000_000,
  publish: 'none' as const,
  ...extra,
});

const names: PhysicalNames = (id, type) => {
  if (type.startsWith('AWS::DynamoDB::')) return TABLE;
  if (type === 'AWS::SQS::Queue') {
    if (/HighLane/.test(id)) return 'fanout-lane-high';
    if (/NormalLane/.test(id)) return 'fanout-lane-normal';
    return /DeadLetter/.test(id) ? 'fanout-jobs-dlq' : 'fanout-jobs';
  }
  if (type === 'AWS::S3::Bucket') return /AccessLogs/.test(id) ? 'fanout-access-logs' : BUCKET;
  if (type === 'AWS::IAM::Role' && /WorkersRole/.test(id)) return 'fanout-worker';
  if (type === 'AWS::Lambda::Function' && /^SandboxFunction/.test(id)) return 'fanout-sandbox';
  return undefined;
};

export interface GatedAws {
  readonly world: IamWorld;
  readonly worker: Caller;
  readonly resolver: TemplateResolver;
  readonly dynamo: StateFixture;
  readonly s3: S3Fixture;
  readonly sqs: SqsFixture;
  readonly secrets: Map<string, string | readonly string[]>;
  readonly secretReads: string[];
  readonly bedrockCalls: { modelId: string; messages: unknown[] }[];
  /** The gated endpoints, by service. */
  readonly endpoints: Record<'dynamodb' | 's3' | 'sqs' | 'secretsmanager' | 'bedrock' | 'lambda', string>;
  /** What the sandbox function was invoked with. */
  readonly sandboxInvocations: { functionName: string; payload: unknown }[];
  /** The worker's environment as the template sets it, pointed at the gates. */
  readonly env: NodeJS.ProcessEnv;
  /** Who calls through the gates now: the worker, or another caller (the operator). */
  callAs(caller: Caller): void;
  /** Runs the bundled handler on the messages in a plain Node process, as Lambda would. */
  invoke(
    messages: readonly Message[],
    options?: { remainingMs?: number; requestId?: string; env?: Record<string, string>; scratchDir?: string },
  ): Promise<{ response: { batchItemFailures: { itemIdentifier: string }[] }; stdout: string }>;
  /** Puts jobs of the run on the job queue, through no gate (a string goes as it is: a poison message). */
  send(runId: string, messages: readonly (Partial<JobMessage> | string)[]): Promise<void>;
  /** Receives every visible message of the job queue (through no gate: the event source's part). */
  receive(count: number): Promise<Message[]>;
  close(): Promise<void>;
}

export async function startGatedAws(options: {
  context: Record<string, unknown>;
  bedrockTurns?: readonly FakeTurn[];
  secrets?: Record<string, string | readonly string[]>;
  extraEnv?: Record<string, string>;
}): Promise<GatedAws> {
  const [dynamo, s3, sqs] = await Promise.all([startState(TABLE), startS3(BUCKET), startSqs()]);
  await ensureTable(embeddedDynamoClient(dynamo.engine.endpoint), TABLE);
  const secrets = new Map<string, string | readonly string[]>(Object.entries(options.secrets ?? {}));
  const fakeSecrets = await startFakeSecrets(secrets);
  const bedrock = await startFakeBedrock(options.bedrockTurns ?? []);

  const outdir = await mkdtemp(join(tmpdir(), 'fanout-cdk-out-'));
  const { app, template } = synthStack(options.context, outdir);
  const assembly = app.synth();
  const json = template.toJSON() as {
    Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
  };
  type FunctionResource = {
    Properties: { Code: { S3Key: string }; Environment: { Variables: Record<string, unknown> } };
  };
  const functionNamed = (pattern: RegExp) =>
    Object.entries(json.Resources).find(
      ([id, r]) => r.Type === 'AWS::Lambda::Function' && pattern.test(id),
    ) as unknown as [string, FunctionResource] | undefined;
  const bundleOf = (resource: FunctionResource) =>
    join(assembly.directory, `asset.${resource.Properties.Code.S3Key.replace(/\.zip$/, '')}`, 'index.mjs');
  const [fnId, fn] = functionNamed(/^Workers/) as [string, FunctionResource];
  const bundle = bundleOf(fn);
  // The sandbox function (-c sandbox=lambda): its own bundle, invoked through the gate.
  const sandboxFn = functionNamed(/^SandboxFunction/);
  const lambda = await startFakeLambda(
    sandboxFn
      ? {
          'fanout-sandbox': {
            bundle: bundleOf(sandboxFn[1]),
            scratch: await mkdtemp(join(tmpdir(), 'fanout-sandbox-fn-')),
          },
        }
      : {},
  );

  const policies = new TemplateResolver(json, names);
  const world = new IamWorld(policies.resourcePolicies());
  const roleId = policies.find('AWS::IAM::Role', /WorkersRole/);
  const worker: Caller = {
    arn: `arn:aws:sts::${ACCOUNT}:assumed-role/fanout-worker/${fnId}`,
    policies: policies.rolePolicies(roleId),
  };
  let caller = worker;
  const gates: Gate[] = [];
  const gate = async (service: Parameters<typeof startGate>[0]['service'], upstream: string) => {
    const started = await startGate({ service, upstream, world, caller: () => caller });
    gates.push(started);
    return started.endpoint;
  };
  const endpoints = {
    dynamodb: await gate('dynamodb', dynamo.engine.endpoint),
    s3: await gate('s3', s3.endpoint),
    sqs: await gate('sqs', sqs.endpoint),
    secretsmanager: await gate('secretsmanager', fakeSecrets.endpoint),
    bedrock: await gate('bedrock', bedrock.endpoint),
    lambda: await gate('lambda', lambda.endpoint),
  };
  const resolver = new TemplateResolver(json, names, { sqs: endpoints.sqs });
  const templateEnv = resolver.resolve(fn.Properties.Environment.Variables) as Record<string, string>;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsmanager,
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: endpoints.bedrock,
    AWS_ENDPOINT_URL_LAMBDA: endpoints.lambda,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...templateEnv,
    // s3rver is addressed by IP: path style, which AWS's own endpoint does not need.
    FANOUT_S3_FORCE_PATH_STYLE: 'true',
    ...options.extraEnv,
  };

  let invocations = 0;
  return {
    world,
    worker,
    resolver,
    dynamo,
    s3,
    sqs,
    secrets,
    secretReads: fakeSecrets.reads,
    bedrockCalls: bedrock.calls,
    sandboxInvocations: lambda.invocations,
    endpoints,
    env,
    callAs: (next) => {
      caller = next;
    },
    async invoke(messages, invokeOptions = {}) {
      const event = lambdaEvent(messages, `arn:aws:sqs:us-east-1:${ACCOUNT}:fanout-jobs`);
      const scratch = invokeOptions.scratchDir ?? (await mkdtemp(join(tmpdir(), 'fanout-lambda-tmp-')));
      const runner = join(scratch, '..', `invoke-${process.pid}-${++invocations}.mjs`);
      const requestId = invokeOptions.requestId ?? `req-${invocations}`;
      writeFileSync(
        runner,
        `const { handler } = await import(${JSON.stringify(bundle)});
         const started = Date.now();
         const context = { awsRequestId: ${JSON.stringify(requestId)}, getRemainingTimeInMillis: () => ${invokeOptions.remainingMs ?? 60_000} - (Date.now() - started) };
         const response = await handler(JSON.parse(process.argv[2]), context);
         console.log('RESPONSE ' + JSON.stringify(response));`,
      );
      // Asynchronously: the engines and gates live in this process and must keep serving.
      const result = await promisify(execFile)(process.execPath, [runner, JSON.stringify(event)], {
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...env, FANOUT_SCRATCH_DIR: scratch, ...invokeOptions.env },
      });
      const line = result.stdout.split('\n').find((l) => l.startsWith('RESPONSE '));
      if (!line) throw new Error(`no response from the bundle:\n${result.stderr}\n${result.stdout}`);
      return { response: JSON.parse(line.slice('RESPONSE '.length)), stdout: result.stdout };
    },
    async send(runId, messages) {
      await sqs.client.send(
        new SendMessageBatchCommand({
          QueueUrl: sqs.queueUrl,
          Entries: messages.map((m, i) => ({
            Id: String(i),
            MessageBody:
              typeof m === 'string' ? m : JSON.stringify({ v: 1, runId, sentAt: Date.now(), ...m }),
          })),
        }),
      );
    },
    receive: (count) => receiveAll(sqs, count),
    async close() {
      await Promise.all(gates.map((g) => g.close()));
      await Promise.all([
        dynamo.close(),
        s3.close(),
        sqs.close(),
        fakeSecrets.close(),
        bedrock.close(),
        lambda.close(),
      ]);
    },
  };
}
