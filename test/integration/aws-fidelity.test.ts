/**
 * The deployed stack's worker, run as Lambda would run it, behind an IAM gate that
 * enforces the synthesized template's policies: every agent mode, a long job that
 * continues twice, a rotated secret, a transient failure, and the rules the emulators
 * do not know (S3's 403 for a missing key, inference profiles, the topic policy).
 */

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3WorkspaceStore } from '../../shared/adapters/s3-workspace.js';
import { SqsJobQueue } from '../../shared/adapters/sqs-queue.js';
import { type Issue, type JobMessage, queueEntry } from '../../shared/domain/job.js';
import { UNAVAILABLE_MARKER } from '../support/fake-aws.js';
import { startFakeGitHub } from '../support/fake-github.js';
import { BUCKET, demoLlmAgent, type GatedAws, SECRET, startGatedAws } from '../support/gated-aws.js';
import type { Caller } from '../support/iam-gate.js';
import { tarball } from '../support/tarball.js';
import { ACCOUNT, type PolicyDocument } from '../support/template-policies.js';

const PROFILE = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const BASE = 'anthropic.claude-sonnet-4-5-20250929-v1:0';
const RUN = 'gated-run';
/** Every model call of the fake reports this usage: 1,000 in, 100 out. */
const USAGE = { inputTokens: 1000, outputTokens: 100 };
/** At the bundled price of the base model (3 and 15 USD per million tokens). */
const CALL_MICROS = 1000 * 3 + 100 * 15;

const use = (id: string, name: string, input: Record<string, unknown>) => ({
  content: [{ toolUse: { toolUseId: id, name, input } }],
  usage: USAGE,
});

let aws: GatedAws;
let github: Awaited<ReturnType<typeof startFakeGitHub>>;

const issue = (repo: string, number: number, body = ''): Issue => ({
  repo,
  number,
  title: `Issue ${number}`,
  body,
  labels: [],
});

const send = (messages: (Partial<JobMessage> | string)[]) => aws.send(RUN, messages);

/** Receives `count` messages, invokes the bundle on them, and deletes what it acknowledged (the event source's part). */
async function deliver(count: number, options: Parameters<GatedAws['invoke']>[1] = {}) {
  const messages = await aws.receive(count);
  expect(messages).toHaveLength(count);
  const result = await aws.invoke(messages, options);
  const failed = new Set(result.response.batchItemFailures.map((f) => f.itemIdentifier));
  for (const m of messages) {
    if (!failed.has(m.MessageId as string)) {
      await aws.sqs.client.send(
        new DeleteMessageCommand({ QueueUrl: aws.sqs.queueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
    }
  }
  return { ...result, messages };
}

const job = (key: string) => aws.dynamo.state.getJob(RUN, key);

beforeAll(async () => {
  github = await startFakeGitHub({
    repos: {},
    tarballs: {
      'acme/api': tarball([
        { path: 'acme-api-abc/', type: '5' },
        { path: 'acme-api-abc/src/greet.ts', content: "export const greet = 'Helo';\n" },
      ]),
    },
    badTokens: ['ghp_before_rotation'],
  });
  aws = await startGatedAws({
    context: { agentModel: PROFILE, githubTokenSecret: SECRET },
    secrets: { [SECRET]: 'ghp_worker' },
    bedrockTurns: [
      use('t1', 'search', { text: 'Helo' }),
      use('t2', 'edit_file', { path: 'src/greet.ts', oldText: "'Helo'", newText: "'Hello'" }),
      use('t3', 'finish', { summary: 'Fix the greeting' }),
    ],
    extraEnv: { FANOUT_GITHUB_API_URL: github.baseUrl, FANOUT_LEASE_SECONDS: '5' },
  });
  await aws.dynamo.state.createRun({ runId: RUN, budgetMicros: 10_000_000, createdAt: Date.now() });
}, 180_000);
afterAll(async () => {
  await aws?.close();
  await github?.close();
});

const simulate = (durationMs: number) => ({
  kind: 'simulate' as const,
  durationMs: { min: durationMs, max: durationMs },
  failRate: 0,
  costMicros: { min: 5000, max: 5000 },
  seed: 1,
});

describe('the bundled worker behind the IAM gate (the template is the only permission it has)', () => {
  it('runs the simulate agent, the scripted llm agent and a poison message in one batch', async () => {
    await send([
      { issue: issue('acme/api', 101), agent: simulate(10) },
      { issue: issue('mock/backlog', 1), agent: demoLlmAgent() },
      '{"not": "a job"',
    ]);
    // Lambda reuses /tmp: what an earlier job left there must be gone before this one runs.
    const scratchDir = await mkdtemp(join(tmpdir(), 'fanout-lambda-tmp-'));
    mkdirSync(join(scratchDir, 'left-by-another-job'));
    writeFileSync(join(scratchDir, 'left-by-another-job', 'secret.txt'), 'x');
    const { response, messages, stdout } = await deliver(3, { scratchDir });
    const poison = messages.find((m) => m.Body?.startsWith('{"not"'))?.MessageId;
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: poison }]);
    const simulated = await job('acme/api#101');
    expect(simulated).toMatchObject({
      status: 'DONE',
      costMicros: 5000,
      worker: expect.stringMatching(/^worker-0[1-5]$/),
    });
    expect(await job('mock/backlog#1')).toMatchObject({ status: 'DONE' });
    expect(existsSync(join(scratchDir, 'left-by-another-job'))).toBe(false);
    // The invocation took a worker slot and gave it back at its end.
    const slots = await aws.dynamo.state.listSlots();
    expect(slots.find((slot) => slot.workerId === simulated?.worker)?.owner).toBeUndefined();
    // EMF metrics for CloudWatch, with the stack as a dimension.
    expect(stdout).toMatch(
      /"CloudWatchMetrics":\[\{"Namespace":"Fanout","Dimensions":\[\["service","stack"\]\]/,
    );
    const dead = await aws.sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: aws.sqs.deadLetterQueueUrl, MessageAttributeNames: ['All'] }),
    );
    expect(dead.Messages?.map((m) => m.MessageAttributes?.['fanout.errorCode']?.StringValue)).toEqual([
      'INVALID_MESSAGE',
    ]);
    expect(aws.world.denied()).toEqual([]);
  });

  it('runs the llm agent on Bedrock through an inference profile, with the bundled price table', async () => {
    await send([{ issue: issue('acme/api', 1) }]);
    const { response } = await deliver(1);
    expect(response.batchItemFailures).toEqual([]);
    expect(await job('acme/api#1')).toMatchObject({ status: 'DONE', costMicros: 3 * CALL_MICROS });
    expect(aws.bedrockCalls.map((c) => c.modelId)).toEqual([PROFILE, PROFILE, PROFILE]);
    // The snapshot was fetched with the token from the secret, by the worker.
    expect(github.requests.find((r) => r.path.includes('/tarball'))?.authorization).toBe('token ghp_worker');
    const ws = new S3WorkspaceStore({ client: aws.s3.client, bucket: BUCKET }).open(
      `runs/${RUN}/jobs/acme/api/1/`,
    );
    expect(Buffer.from((await ws.read('agent/diff.patch')) ?? []).toString()).toContain(
      "+export const greet = 'Hello';",
    );
    expect(aws.world.denied()).toEqual([]);
  });

  it('prices a run by the price table it carries (content, not a path on the sender)', async () => {
    const prices = { asOf: 'test', models: { [BASE]: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0 } } };
    await send([
      {
        issue: issue('acme/api', 2),
        agent: {
          kind: 'llm',
          model: PROFILE,
          maxSteps: 10,
          maxOutputTokens: 1000,
          maxCostPerJobMicros: 1_000_000,
          publish: 'none',
          prices,
        },
      },
    ]);
    await deliver(1);
    expect(await job('acme/api#2')).toMatchObject({ status: 'DONE', costMicros: 3 * (1000 + 100) });
    expect(aws.world.denied()).toEqual([]);
  });

  it('re-reads a rotated GitHub token after a 401, and goes on', async () => {
    aws.secrets.set(SECRET, ['ghp_before_rotation', 'ghp_after_rotation']);
    const reads = aws.secretReads.length;
    await send([{ issue: issue('acme/api', 3) }]);
    await deliver(1);
    expect(await job('acme/api#3')).toMatchObject({ status: 'DONE' });
    expect(aws.secretReads.length - reads).toBe(2);
    expect(
      github.requests
        .filter((r) => r.path.includes('/tarball'))
        .map((r) => r.authorization)
        .slice(-2),
    ).toEqual(['token ghp_before_rotation', 'token ghp_after_rotation']);
    aws.secrets.set(SECRET, 'ghp_worker');
  });

  it('gives a job Bedrock could not serve back to the queue with a backoff, not the 90-minute visibility timeout', async () => {
    await send([{ issue: issue('acme/api', 4, `Please fix. ${UNAVAILABLE_MARKER}`) }]);
    const { response, messages } = await deliver(1);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: messages[0]?.MessageId }]);
    // Unknown to the code, but transient by the SDK's signals (503, $fault server): retryable.
    expect(await job('acme/api#4')).toMatchObject({ status: 'PENDING', errorCode: 'SERVICE_UNAVAILABLE' });
    const { Attributes } = await aws.sqs.client.send(
      new GetQueueAttributesCommand({ QueueUrl: aws.sqs.queueUrl, AttributeNames: ['All'] }),
    );
    expect(Attributes?.ApproximateNumberOfMessagesNotVisible).toBe('1');
    expect(aws.world.denied()).toEqual([]);
  });

  it('carries a job longer than an invocation through two continuations on its own queue', async () => {
    await send([{ issue: issue('acme/api', 200), agent: simulate(3500) }]);
    // 2.5 s an invocation, asked to checkpoint 1 s before its end: three invocations.
    for (let i = 0; i < 2; i++) {
      await deliver(1, { remainingMs: 2500 });
      expect(await job('acme/api#200')).toMatchObject({ status: 'PENDING' });
    }
    await deliver(1, { remainingMs: 2500 });
    expect(await job('acme/api#200')).toMatchObject({
      status: 'DONE',
      attempts: 3,
      costMicros: 5000,
      invocations: 3,
      model: 'simulate',
    });
    expect(aws.world.denied()).toEqual([]);
  });

  it('takes a waiting high job ahead from its lane before the low one it was handed', async () => {
    const queue = new SqsJobQueue({
      client: aws.sqs.client,
      queueUrl: aws.sqs.queueUrl,
      deadLetterQueueUrl: aws.sqs.deadLetterQueueUrl,
      laneUrls: aws.sqs.laneUrls,
    });
    const message = (n: number, priority: 'high' | 'low'): JobMessage => ({
      v: 1,
      runId: RUN,
      sentAt: Date.now(),
      issue: issue('acme/api', n),
      agent: simulate(10),
      priority,
    });
    await queue.send([queueEntry(message(300, 'low'))]);
    // The event source hands a worker the low job; then a high one arrives: on the queue
    // behind it and, as a copy, in its lane.
    const handed = await aws.receive(1);
    expect(handed).toHaveLength(1);
    await queue.send([queueEntry(message(301, 'high'))]);
    const { response } = await aws.invoke(handed, { remainingMs: 120_000 });
    expect(response.batchItemFailures).toEqual([]);
    await aws.sqs.client.send(
      new DeleteMessageCommand({ QueueUrl: aws.sqs.queueUrl, ReceiptHandle: handed[0]?.ReceiptHandle }),
    );
    const [high, low] = [await job('acme/api#301'), await job('acme/api#300')];
    expect(high).toMatchObject({ status: 'DONE', attempts: 1 });
    expect(low).toMatchObject({ status: 'DONE', attempts: 1 });
    expect(high?.startedAt ?? 0).toBeLessThan(low?.startedAt ?? 0);
    // The high job's own message comes up later and is acknowledged: its job is finished.
    const second = await deliver(1, { remainingMs: 120_000 });
    expect(second.response.batchItemFailures).toEqual([]);
    expect(await job('acme/api#301')).toMatchObject({ status: 'DONE', attempts: 1 });
    // Receiving, deleting and copying to the lane were all the role's to do.
    expect(aws.world.denied()).toEqual([]);
  });

  it('uses every permission its role grants, and needs no other (derived from the calls, not a list)', () => {
    // The event source mapping polls with the function's role (the code itself receives only
    // from the priority lanes); the Lambda service writes the logs.
    const notTheCode = /^(sqs:(GetQueueAttributes|GetQueueUrl)|logs:.*)$/;
    const granted = new Set(
      aws.worker.policies
        .flatMap((p) => p.Statement)
        .filter((s) => s.Effect === 'Allow')
        .flatMap((s) => [s.Action].flat() as string[])
        .filter((a) => !notTheCode.test(a)),
    );
    const used = aws.world.actionsOf(aws.worker.arn);
    expect([...used].sort()).toEqual([...granted].sort());
    expect(aws.world.denied()).toEqual([]);
  });
});

describe('the AWS rules the emulators do not enforce', () => {
  const without = (caller: Caller, drop: (statement: Record<string, unknown>) => boolean): Caller => ({
    ...caller,
    arn: `${caller.arn}-reduced`,
    policies: caller.policies.map((p) => ({ ...p, Statement: p.Statement.filter((s) => !drop(s)) })),
  });
  const gatedS3 = () =>
    new S3WorkspaceStore({
      client: new S3Client({
        endpoint: aws.endpoints.s3,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      }),
      bucket: BUCKET,
    }).open('runs/r/jobs/acme/api/9/');

  it('S3 answers 404 for a missing key only with ListBucket; the adapter tells "missing" from "denied"', async () => {
    try {
      expect(await gatedS3().read('agent/checkpoint.json')).toBeUndefined();
      // The grant as it was: ListBucket conditioned on s3:prefix, which a GetObject does not carry.
      const prefixed: Caller = {
        ...without(aws.worker, (s) => JSON.stringify(s.Action).includes('s3:ListBucket')),
        arn: `${aws.worker.arn}-prefixed`,
      };
      (prefixed.policies as PolicyDocument[]).push({
        Statement: [
          {
            Effect: 'Allow',
            Action: 's3:ListBucket',
            Resource: `arn:aws:s3:::${BUCKET}`,
            Condition: { StringLike: { 's3:prefix': ['runs/*'] } },
          },
        ],
      });
      aws.callAs(prefixed);
      // Missing, and the adapter's list under the key's prefix is allowed: still "missing".
      expect(await gatedS3().read('agent/checkpoint.json')).toBeUndefined();
      aws.callAs(without(aws.worker, (s) => JSON.stringify(s.Action).includes('s3:ListBucket')));
      await expect(gatedS3().read('agent/checkpoint.json')).rejects.toMatchObject({
        code: 'ACCESS_DENIED',
        message: expect.stringMatching(/needs s3:GetObject on the object and s3:ListBucket on the bucket/),
      });
    } finally {
      aws.callAs(aws.worker);
      aws.world.decisions.splice(0);
    }
  });

  it('refuses a call the template does not allow: without the foundation-model grant a profile call fails', async () => {
    aws.callAs(
      without(aws.worker, (s) => s.Condition !== undefined && JSON.stringify(s).includes('foundation-model')),
    );
    try {
      await send([{ issue: issue('acme/api', 5) }]);
      await deliver(1);
      expect(await job('acme/api#5')).toMatchObject({
        status: 'FAILED',
        errorCode: 'AGENT_FAILED',
        errorMessage: expect.stringMatching(
          /Bedrock refused model .*not authorized to perform: bedrock:InvokeModel/,
        ),
      });
      expect(aws.world.denied().map((d) => d.resource)).toEqual([
        `arn:aws:bedrock:us-east-1::foundation-model/${BASE}`,
      ]);
    } finally {
      aws.callAs(aws.worker);
      aws.world.decisions.splice(0);
    }
  });

  it('lets CloudWatch alarms publish to the topic, from this account only', async () => {
    const topic = aws.resolver.of(aws.resolver.find('AWS::SNS::Topic', /AlarmTopic/)).ref;
    const cloudwatch: Caller = { arn: 'cloudwatch.amazonaws.com', policies: [] };
    const publish = (account: string) =>
      aws.world.authorize(
        cloudwatch,
        { action: 'sns:Publish', resource: topic, context: { 'aws:SourceAccount': account } },
        false,
      );
    expect(await publish(ACCOUNT)).toBe(true);
    expect(await publish('999999999999')).toBe(false);
  });
});
