import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SQS_MAX_MESSAGE_BYTES, SqsJobQueue } from '../../shared/adapters/sqs-queue.js';
import { type SqsFixture, startSqs } from '../support/aws-engines.js';

describe('SQS queue adapter: exact calls', () => {
  let sqs: AwsClientStub<SQSClient>;
  beforeAll(() => {
    sqs = mockClient(SQSClient);
  });
  afterAll(() => sqs.restore());
  const queue = () =>
    new SqsJobQueue({
      client: new SQSClient({ region: 'us-east-1' }),
      queueUrl: 'https://sqs.example/q',
      deadLetterQueueUrl: 'https://sqs.example/dlq',
      backoffMs: () => 0,
    });
  beforeEach(() => sqs.reset());

  it('sends in batches of at most 10', async () => {
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m${e.Id}` })),
      Failed: [],
    }));
    const entries = Array.from({ length: 23 }, (_, i) => ({ id: `acme/api#${i}`, body: `{"n":${i}}` }));
    const result = await queue().send(entries);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 3);
    const sizes = sqs.commandCalls(SendMessageBatchCommand).map((call) => call.args[0].input.Entries?.length);
    expect(sizes).toEqual([10, 10, 3]);
    expect(sqs).toHaveReceivedNthCommandWith(SendMessageBatchCommand, 1, {
      QueueUrl: 'https://sqs.example/q',
    });
    expect(result.sent).toHaveLength(23);
    expect(result.failed).toEqual([]);
  });

  it('retries entries SQS failed on its side, and reports the ones the sender got wrong, one by one', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolvesOnce({
        Successful: [{ Id: '0', MessageId: 'a', MD5OfMessageBody: '' }],
        Failed: [
          { Id: '1', SenderFault: false, Code: 'InternalError', Message: 'try again' },
          { Id: '2', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad characters' },
        ],
      })
      .resolvesOnce({ Successful: [{ Id: '1', MessageId: 'b', MD5OfMessageBody: '' }], Failed: [] });
    const result = await queue().send([
      { id: 'acme/api#1', body: 'one' },
      { id: 'acme/api#2', body: 'two' },
      { id: 'acme/api#3', body: 'three' },
    ]);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 2);
    expect(sqs).toHaveReceivedLastCommandWith(SendMessageBatchCommand, {
      Entries: [{ Id: '1', MessageBody: 'two' }],
    });
    expect([...result.sent].sort()).toEqual(['acme/api#1', 'acme/api#2']);
    expect(result.failed).toEqual([
      { id: 'acme/api#3', code: 'InvalidMessageContents', message: 'bad characters' },
    ]);
  });

  it('gives up on an entry after its attempts, and says why', async () => {
    sqs.on(SendMessageBatchCommand).resolves({
      Successful: [],
      Failed: [{ Id: '0', SenderFault: false, Code: 'ServiceUnavailable', Message: 'busy' }],
    });
    const result = await queue().send([{ id: 'acme/api#1', body: 'one' }]);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 3);
    expect(result.failed).toEqual([{ id: 'acme/api#1', code: 'ServiceUnavailable', message: 'busy' }]);
  });

  it('never sends a message over the size limit', async () => {
    const result = await queue().send([{ id: 'acme/api#9', body: 'x'.repeat(SQS_MAX_MESSAGE_BYTES + 1) }]);
    expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
    expect(result.failed[0]).toMatchObject({ id: 'acme/api#9', code: 'MESSAGE_TOO_LARGE' });
  });

  it('dead-letters with the reason as attributes, then deletes from the queue', async () => {
    sqs.on(SendMessageCommand).resolves({ MessageId: 'x' });
    sqs.on(DeleteMessageCommand).resolves({});
    await queue().deadLetter(
      { messageId: 'm1', receiptHandle: 'r1', body: 'b', receiveCount: 1, sentAt: 0 },
      { code: 'INVALID_MESSAGE', message: 'body is not JSON' },
    );
    expect(sqs).toHaveReceivedCommandWith(SendMessageCommand, {
      QueueUrl: 'https://sqs.example/dlq',
      MessageBody: 'b',
      MessageAttributes: expect.objectContaining({
        'fanout.errorCode': { DataType: 'String', StringValue: 'INVALID_MESSAGE' },
        'fanout.reason': { DataType: 'String', StringValue: 'body is not JSON' },
      }),
    });
    expect(sqs).toHaveReceivedCommandWith(DeleteMessageCommand, {
      QueueUrl: 'https://sqs.example/q',
      ReceiptHandle: 'r1',
    });
  });
});

describe('SQS queue adapter on local-aws-sqs', () => {
  let fx: SqsFixture;
  let queue: SqsJobQueue;
  beforeAll(async () => {
    // local-aws-sqs counts ChangeMessageVisibility as a receive, so leave room above 2.
    fx = await startSqs({ visibilitySeconds: 1, maxReceiveCount: 3 });
    queue = new SqsJobQueue({
      client: fx.client,
      queueUrl: fx.queueUrl,
      deadLetterQueueUrl: fx.deadLetterQueueUrl,
    });
  });
  afterAll(() => fx.close());

  const drain = async () => {
    for (;;) {
      const records = await queue.receive(10, 0);
      if (records.length === 0) return;
      for (const r of records) await queue.delete(r);
    }
  };

  it('hides a received message, shows it again at once after changeVisibility(0), and counts receives', async () => {
    await queue.send([{ id: 'a', body: 'visible-again' }]);
    const [first] = await queue.receive(1, 1000);
    expect(first).toMatchObject({ body: 'visible-again', receiveCount: 1 });
    expect(await queue.receive(1, 0)).toEqual([]);
    await queue.changeVisibility(first as NonNullable<typeof first>, 0);
    const [second] = await queue.receive(1, 1000);
    expect(second?.body).toBe('visible-again');
    expect(second?.receiveCount).toBeGreaterThanOrEqual(2);
    await drain();
  });

  it('redrives a message that is never deleted to the dead-letter queue after maxReceiveCount', async () => {
    await queue.send([{ id: 'p', body: 'never-acknowledged' }]);
    let receives = 0;
    // The engine's own visibility timeout (1 s) brings it back; its redrive policy (3) ends it.
    for (let i = 0; i < 4; i++) {
      const records = await queue.receive(1, 1500);
      receives += records.length;
    }
    expect(receives).toBe(3);
    const dlq = new SqsJobQueue({
      client: fx.client,
      queueUrl: fx.deadLetterQueueUrl,
      deadLetterQueueUrl: fx.deadLetterQueueUrl,
    });
    const dead = await dlq.receive(10, 1000);
    expect(dead.map((r) => r.body)).toContain('never-acknowledged');
    for (const r of dead) await dlq.delete(r);
  });

  it('moves a record to the dead-letter queue at once with deadLetter', async () => {
    await queue.send([{ id: 'x', body: 'poison' }]);
    const [record] = await queue.receive(1, 1000);
    await queue.deadLetter(record as NonNullable<typeof record>, {
      code: 'INVALID_MESSAGE',
      message: 'not JSON',
    });
    expect(await queue.receive(1, 1500)).toEqual([]);
    const response = await fx.client.send(
      new ReceiveMessageCommand({
        QueueUrl: fx.deadLetterQueueUrl,
        MessageAttributeNames: ['All'],
        WaitTimeSeconds: 1,
      }),
    );
    expect(response.Messages?.[0]?.Body).toBe('poison');
    expect(response.Messages?.[0]?.MessageAttributes?.['fanout.errorCode']?.StringValue).toBe(
      'INVALID_MESSAGE',
    );
  });
});
