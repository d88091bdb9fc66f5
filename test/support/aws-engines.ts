import { mkdtemp } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { createSqsServer } from 'local-aws-sqs';
import S3rver from 's3rver';

// s3rver stores a streamed PutObject's chunked framing unless checksums are only sent when required.
process.env.AWS_REQUEST_CHECKSUM_CALCULATION = 'WHEN_REQUIRED';
process.env.AWS_RESPONSE_CHECKSUM_VALIDATION = 'WHEN_REQUIRED';

export interface S3Fixture {
  readonly endpoint: string;
  readonly bucket: string;
  readonly client: S3Client;
  close(): Promise<void>;
}

/** s3rver on a free loopback port, storing under a temp folder, with one bucket. */
export async function startS3(bucket = 'fanout-workspaces'): Promise<S3Fixture> {
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: await mkdtemp(join(tmpdir(), 'fanout-s3-')),
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return {
    endpoint,
    bucket,
    client,
    close: async () => {
      client.destroy();
      await server.close();
    },
  };
}

export interface SqsFixture {
  readonly endpoint: string;
  readonly client: SQSClient;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  /** The priority lanes, as the stack makes them (no redrive policy). */
  readonly laneUrls: { readonly high: string; readonly normal: string };
  close(): Promise<void>;
}

/** local-aws-sqs on a free loopback port, with a queue whose redrive policy targets a DLQ. */
export async function startSqs(
  options: { visibilitySeconds?: number; maxReceiveCount?: number } = {},
): Promise<SqsFixture> {
  const server: Server = await createSqsServer({ port: 0, hostname: '127.0.0.1' });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new SQSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
  });
  const dlq = await client.send(new CreateQueueCommand({ QueueName: 'fanout-jobs-dlq' }));
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: 'fanout-jobs',
      Attributes: {
        VisibilityTimeout: String(options.visibilitySeconds ?? 30),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: Attributes?.QueueArn,
          maxReceiveCount: options.maxReceiveCount ?? 3,
        }),
      },
    }),
  );
  const lane = async (name: string) =>
    (
      await client.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: { VisibilityTimeout: String(options.visibilitySeconds ?? 30) },
        }),
      )
    ).QueueUrl as string;
  return {
    endpoint,
    client,
    queueUrl: queue.QueueUrl as string,
    deadLetterQueueUrl: dlq.QueueUrl as string,
    laneUrls: { high: await lane('fanout-lane-high'), normal: await lane('fanout-lane-normal') },
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
    },
  };
}

/**
 * The environment of a worker Lambda whose AWS is the embedded engines: what the
 * stack sets, with the SDK pointed at loopback. `extra` sets or overrides variables.
 */
export function lambdaEnv(
  engines: { dynamoEndpoint: string; tableName: string; s3: S3Fixture; sqs: SqsFixture },
  extra: Record<string, string>,
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_ENDPOINT_URL_DYNAMODB: engines.dynamoEndpoint,
    AWS_ENDPOINT_URL_S3: engines.s3.endpoint,
    AWS_ENDPOINT_URL_SQS: engines.sqs.endpoint,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    FANOUT_TABLE_NAME: engines.tableName,
    FANOUT_BUCKET_NAME: engines.s3.bucket,
    FANOUT_QUEUE_URL: engines.sqs.queueUrl,
    FANOUT_DLQ_URL: engines.sqs.deadLetterQueueUrl,
    FANOUT_HIGH_LANE_URL: engines.sqs.laneUrls.high,
    FANOUT_NORMAL_LANE_URL: engines.sqs.laneUrls.normal,
    FANOUT_S3_FORCE_PATH_STYLE: 'true',
    ...extra,
  };
}

/**
 * Receives until `count` messages of the queue are in hand (short polls: local-aws-sqs's
 * long poll can return one message twice), or 10 s pass.
 */
export async function receiveAll(sqs: SqsFixture, count: number): Promise<Message[]> {
  const byId = new Map<string, Message>();
  const until = Date.now() + 10_000;
  while (byId.size < count && Date.now() < until) {
    const { Messages = [] } = await sqs.client.send(
      new ReceiveMessageCommand({
        QueueUrl: sqs.queueUrl,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    );
    for (const m of Messages) byId.set(m.MessageId as string, m);
    if (Messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return [...byId.values()];
}

/** The event the Lambda SQS event source would hand the function for these messages. */
export function lambdaEvent(
  messages: readonly Message[],
  queueArn = 'arn:aws:sqs:us-east-1:123456789012:fanout-jobs',
): SQSEvent {
  return {
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
      eventSourceARN: queueArn,
      awsRegion: 'us-east-1',
    })),
  };
}
