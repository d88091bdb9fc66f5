import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoState, ensureTable } from '../../shared/adapters/dynamo-state.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { S3WorkspaceStore } from '../../shared/adapters/s3-workspace.js';
import type { JobMessage } from '../../shared/domain/job.js';
import { lambdaEnv, type S3Fixture, type SqsFixture, startS3, startSqs } from '../support/aws-engines.js';
import { type StateFixture, startState } from '../support/engines.js';
import { synthStack } from '../support/synth.js';

let dynamo: StateFixture;
let s3: S3Fixture;
let sqs: SqsFixture;
let bundle: string;

beforeAll(async () => {
  [dynamo, s3, sqs] = await Promise.all([
    startState('fanout-state'),
    startS3('fanout-workspaces'),
    startSqs(),
  ]);
  // Synthesize as `cdk synth` does and take the worker's esbuild bundle from the cloud assembly.
  const outdir = await mkdtemp(join(tmpdir(), 'fanout-cdk-out-'));
  const { app, template } = synthStack({}, outdir);
  const assembly = app.synth();
  const [fn] = Object.values(template.findResources('AWS::Lambda::Function'));
  const key = (fn as { Properties: { Code: { S3Key: string } } }).Properties.Code.S3Key;
  bundle = join(assembly.directory, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs');
});
afterAll(async () => {
  await Promise.all([dynamo?.close(), s3?.close(), sqs?.close()]);
});

const message = (n: number): string =>
  JSON.stringify({
    v: 1,
    runId: 'bundle-run',
    issue: { repo: 'acme/api', number: n, title: `Issue ${n}`, body: '', labels: [] },
    sentAt: Date.now(),
  } satisfies JobMessage);

describe('the bundled worker, run in a plain Node process against the embedded engines', () => {
  it('does two jobs and reports exactly the poison record as failed', async () => {
    expect(existsSync(bundle)).toBe(true);
    await ensureTable(embeddedDynamoClient(dynamo.engine.endpoint), 'fanout-state');
    await dynamo.state.createRun({ runId: 'bundle-run', budgetMicros: 1_000_000, createdAt: Date.now() });

    // Real messages on the queue, so the receipt handles the handler uses are real too.
    await sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: sqs.queueUrl,
        Entries: [
          { Id: 'a', MessageBody: message(1) },
          { Id: 'b', MessageBody: '{"this is": not a job' },
          { Id: 'c', MessageBody: message(2) },
        ],
      }),
    );
    const received = await sqs.client.send(
      new ReceiveMessageCommand({
        QueueUrl: sqs.queueUrl,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    const messages = received.Messages ?? [];
    expect(messages).toHaveLength(3);
    const event: SQSEvent = {
      Records: messages.map((m) => ({
        messageId: m.MessageId as string,
        receiptHandle: m.ReceiptHandle as string,
        body: m.Body as string,
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? '0',
          SenderId: 'test',
          ApproximateFirstReceiveTimestamp: '0',
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:fanout-jobs',
        awsRegion: 'us-east-1',
      })),
    };
    const poison = messages.find((m) => m.Body?.includes('not a job'))?.MessageId;

    const scratch = await mkdtemp(join(tmpdir(), 'fanout-lambda-tmp-'));
    mkdirSync(join(scratch, 'left-by-another-job'), { recursive: true });
    writeFileSync(join(scratch, 'left-by-another-job', 'secret.txt'), 'x');
    const runner = join(scratch, '..', `invoke-${Date.now()}.mjs`);
    writeFileSync(
      runner,
      `const { handler } = await import(${JSON.stringify(bundle)});
       const context = { awsRequestId: 'req-1', getRemainingTimeInMillis: () => 60000 };
       const response = await handler(JSON.parse(process.argv[2]), context);
       console.log('RESPONSE ' + JSON.stringify(response));`,
    );
    // Asynchronously: the engines live in this process and must keep serving meanwhile.
    const result = await promisify(execFile)(process.execPath, [runner, JSON.stringify(event)], {
      encoding: 'utf8',
      timeout: 60_000,
      env: lambdaEnv(
        { dynamoEndpoint: dynamo.engine.endpoint, tableName: 'fanout-state', s3, sqs },
        {
          AWS_LAMBDA_LOG_STREAM_NAME: '2026/11/29/[$LATEST]0123456789abcdef',
          FANOUT_MAX_RECEIVE_COUNT: '3',
          FANOUT_WORKERS: '3',
          FANOUT_SCRATCH_DIR: scratch,
          FANOUT_AGENT: JSON.stringify({
            kind: 'simulate',
            durationMs: { min: 10, max: 10 },
            failRate: 0,
            costMicros: { min: 5000, max: 5000 },
            seed: 1,
          }),
        },
      ),
    });
    const line = result.stdout.split('\n').find((l) => l.startsWith('RESPONSE '));
    expect(line, result.stderr + result.stdout).toBeDefined();
    const response = JSON.parse((line as string).slice('RESPONSE '.length));

    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: poison }] });
    const jobs = await new DynamoState({
      tableName: 'fanout-state',
      client: embeddedDynamoClient(dynamo.engine.endpoint),
    }).listJobs('bundle-run');
    // The invocation took a worker slot (worker-01..03) and gave it back at its end.
    const slot = jobs[0]?.worker;
    expect(slot).toMatch(/^worker-0[1-3]$/);
    expect(jobs.map((j) => [j.jobKey, j.status, j.costMicros, j.worker])).toEqual([
      ['acme/api#1', 'DONE', 5000, slot],
      ['acme/api#2', 'DONE', 5000, slot],
    ]);
    const slots = await dynamo.state.listSlots();
    expect(slots.find((s) => s.workerId === slot)?.owner).toBeUndefined();
    const store = new S3WorkspaceStore({ client: s3.client, bucket: s3.bucket });
    for (const n of [1, 2]) {
      expect(await store.open(`runs/bundle-run/jobs/acme/api/${n}/`).list()).toEqual(['result.json']);
    }
    // The scratch dir (Lambda's /tmp) was emptied before the jobs ran.
    expect(existsSync(join(scratch, 'left-by-another-job'))).toBe(false);
    // EMF metrics went to stdout for CloudWatch.
    expect(result.stdout).toMatch(/"_aws":\{"Timestamp":\d+,"CloudWatchMetrics":\[\{"Namespace":"Fanout"/);
    const dead = await sqs.client.send(
      new ReceiveMessageCommand({
        QueueUrl: sqs.deadLetterQueueUrl,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    expect(dead.Messages?.map((m) => m.MessageAttributes?.['fanout.errorCode']?.StringValue)).toEqual([
      'INVALID_MESSAGE',
    ]);
  });
});
