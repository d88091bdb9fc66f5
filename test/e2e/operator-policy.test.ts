/**
 * The operator's side: `fanout send`, `status`, `report` and `redrive` against a stack,
 * through the IAM gate, holding only the minimal operator policy the README ships.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redriveCommand } from '../../cli/redrive-command.js';
import { reportCommand } from '../../cli/report-command.js';
import { sendCommand } from '../../cli/send-command.js';
import { statusCommand } from '../../cli/status-command.js';
import type { AwsClients } from '../../cli/targets.js';
import { receiveAll } from '../support/aws-engines.js';
import { BUCKET, type GatedAws, startGatedAws, TABLE } from '../support/gated-aws.js';
import type { Caller } from '../support/iam-gate.js';
import { ACCOUNT, type PolicyDocument, REGION } from '../support/template-policies.js';

const ROOT = join(import.meta.dirname, '../..');
const STACK_ARN = `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/Fanout/0f1e2d3c`;

/** The README's operator policy, filled in with one stack's names. */
function operatorPolicy(): PolicyDocument {
  const text = readFileSync(join(ROOT, 'infra/operator-policy.json'), 'utf8');
  const values: Record<string, string> = {
    Region: REGION,
    Account: ACCOUNT,
    StackName: 'Fanout',
    QueueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:fanout-jobs`,
    DeadLetterQueueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:fanout-jobs-dlq`,
    HighLaneArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:fanout-lane-high`,
    NormalLaneArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:fanout-lane-normal`,
    TableArn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`,
    BucketArn: `arn:aws:s3:::${BUCKET}`,
  };
  return JSON.parse(text.replace(/\$\{(\w+)\}/g, (_, name: string) => values[name] as string));
}

let aws: GatedAws;
let clients: AwsClients;
let operator: Caller;
const printed: string[] = [];
const out = (text: string) => printed.push(text);

beforeAll(async () => {
  aws = await startGatedAws({ context: {} });
  operator = { arn: `arn:aws:iam::${ACCOUNT}:user/operator`, policies: [operatorPolicy()] };
  aws.callAs(operator);
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const cloudFormation = new CloudFormationClient({ region: REGION });
  // CloudFormation has no engine here: its one call is answered by a mock, and authorized below.
  mockClient(cloudFormation)
    .on(DescribeStacksCommand, { StackName: 'Fanout' })
    .resolves({
      Stacks: [
        {
          StackName: 'Fanout',
          StackId: STACK_ARN,
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: Object.entries({
            QueueUrl: `${aws.endpoints.sqs}/${ACCOUNT}/fanout-jobs`,
            DeadLetterQueueUrl: `${aws.endpoints.sqs}/${ACCOUNT}/fanout-jobs-dlq`,
            HighLaneUrl: `${aws.endpoints.sqs}/${ACCOUNT}/fanout-lane-high`,
            NormalLaneUrl: `${aws.endpoints.sqs}/${ACCOUNT}/fanout-lane-normal`,
            TableName: TABLE,
            BucketName: BUCKET,
            BudgetUsd: '50',
            WorkerCount: '5',
            TimeoutSeconds: '900',
            QueueRetentionDays: '14',
            AgentModel: 'none',
          }).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
        },
      ],
    });
  clients = {
    cloudFormation,
    sqs: new SQSClient({ region: REGION, endpoint: aws.endpoints.sqs, credentials }),
    dynamodb: new DynamoDBClient({ region: REGION, endpoint: aws.endpoints.dynamodb, credentials }),
    s3: new S3Client({ region: REGION, endpoint: aws.endpoints.s3, forcePathStyle: true, credentials }),
  };
}, 180_000);
afterAll(() => aws?.close());

describe('the minimal operator policy of the README', () => {
  it('lets the operator send, watch, report and redrive, and allows nothing they do not use', async () => {
    expect(
      await aws.world.authorize(operator, { action: 'cloudformation:DescribeStacks', resource: STACK_ARN }),
    ).toBe(true);
    const file = join(await mkdtemp(join(tmpdir(), 'op-')), 'issues.jsonl');
    writeFileSync(
      file,
      [
        { repo: 'acme/api', number: 1, title: 'small' },
        { repo: 'acme/api', number: 2, title: 'large', body: 'x'.repeat(300_000) },
      ]
        .map((issue) => JSON.stringify(issue))
        .join('\n'),
    );
    expect(
      await sendCommand(['--file', file, '--stack', 'Fanout', '--run-id', 'op'], { aws: clients, out }),
    ).toBe(0);
    expect(printed.join('\n')).toMatch(/sent 2, 0 already sent[\s\S]*1 bodies too large/);
    // Normal jobs: each also copied to the normal lane (the operator's SendMessage there).
    const copies = await receiveAll({ ...aws.sqs, queueUrl: aws.sqs.laneUrls.normal }, 2);
    expect(copies.map((m) => JSON.parse(m.Body ?? '{}').issue.number).sort()).toEqual([1, 2]);
    expect(
      await statusCommand(['--stack', 'Fanout', '--run-id', 'op', '--json'], { aws: clients, out }),
    ).toBe(0);
    expect(JSON.parse(printed.at(-1) as string)).toMatchObject({
      totals: { PENDING: 2 },
      queue: { visible: 2 },
    });
    expect(await reportCommand(['--stack', 'Fanout', '--run-id', 'op'], { aws: clients, out })).toBe(0);

    // A failed job waits in the dead-letter queue (put there as the worker would, not by the operator).
    await aws.dynamo.state.acquireLease('op', 'acme/api#1', { owner: 'w', worker: 'worker-01' }, 0, 1);
    await aws.dynamo.state.finishJob(
      { runId: 'op', jobKey: 'acme/api#1', owner: 'w', fence: 1 },
      { status: 'FAILED', worker: 'worker-01', durationMs: 1, costMicros: 0, errorCode: 'AGENT_FAILED' },
      1,
    );
    await aws.sqs.client.send(
      new SendMessageCommand({
        QueueUrl: aws.sqs.deadLetterQueueUrl,
        MessageBody: JSON.stringify({
          v: 1,
          runId: 'op',
          issue: { repo: 'acme/api', number: 1, title: 'small', body: '', labels: [] },
          sentAt: 1,
        }),
      }),
    );
    expect(await redriveCommand(['--stack', 'Fanout', '--run-id', 'op'], { aws: clients, out })).toBe(0);
    expect(printed.at(-2)).toMatch(/Redrove 1 job/);

    expect(aws.world.denied()).toEqual([]);
    const granted = operatorPolicy().Statement.flatMap((s) => [s.Action].flat() as string[]);
    expect([...aws.world.actionsOf(operator.arn)].sort()).toEqual([...new Set(granted)].sort());
  });

  it('refuses the operator what the policy leaves out', async () => {
    expect(
      await aws.world.authorize(operator, {
        action: 'dynamodb:DeleteItem',
        resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`,
      }),
    ).toBe(false);
    expect(
      await aws.world.authorize(operator, {
        action: 's3:GetObject',
        resource: `arn:aws:s3:::${BUCKET}/runs/x`,
      }),
    ).toBe(false);
  });
});
