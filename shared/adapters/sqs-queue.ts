import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { FanoutError } from '../domain/errors.js';
import { MAX_MESSAGE_BYTES, PRIORITIES, type Priority, parseJobMessage, queueEntry } from '../domain/job.js';
import type {
  DeadLetter,
  DeadLetterReason,
  JobQueue,
  QueueAdmin,
  QueueDepths,
  QueueRecord,
  SendEntry,
  SendResult,
} from '../ports/queue.js';

/** SQS refuses a message (and a batch) over 256 KiB. */
export const SQS_MAX_MESSAGE_BYTES = MAX_MESSAGE_BYTES;
const SQS_MAX_BATCH = 10;

export interface SqsJobQueueOptions {
  readonly client: SQSClient;
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  /**
   * The priority lanes: a job of a priority with a lane is sent to the job queue and, as a
   * copy, to its lane, from which a worker holding a job of a lower priority takes it ahead
   * of its own (README, "Priorities"). The lowest priority has none.
   */
  readonly laneUrls?: Partial<Record<Priority, string>>;
  /** Attempts for a batch entry that SQS reports as failed (default 3). */
  readonly sendAttempts?: number;
  /** Waits between attempts; injected so tests need not wait. */
  readonly backoffMs?: (attempt: number) => number;
}

const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** Splits entries into SendMessageBatch calls: at most 10 entries and 256 KiB each. */
function batches(entries: readonly SendEntry[]): SendEntry[][] {
  const out: SendEntry[][] = [];
  let current: SendEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = utf8Bytes(entry.body);
    if (current.length === SQS_MAX_BATCH || (current.length > 0 && bytes + size > SQS_MAX_MESSAGE_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** The job queue on SQS: send in batches of 10, receive, delete, change visibility, dead-letter. */
export class SqsJobQueue implements JobQueue {
  private readonly attempts: number;
  private readonly backoffMs: (attempt: number) => number;

  constructor(private readonly options: SqsJobQueueOptions) {
    this.attempts = options.sendAttempts ?? 3;
    this.backoffMs = options.backoffMs ?? ((attempt) => 100 * 2 ** attempt * (0.5 + Math.random()));
  }

  /**
   * Sends every entry, retrying the ones SQS reports as failed; reports each failure with its
   * reason. Then each sent entry of a priority with a lane is copied to that lane; a copy that
   * cannot be sent costs the job its place ahead, not the job (its message is on the queue).
   */
  async send(entries: readonly SendEntry[]): Promise<SendResult> {
    const result = await this.sendTo(this.options.queueUrl, entries);
    const sent = new Set(result.sent);
    const lanes = this.options.laneUrls ?? {};
    for (const priority of PRIORITIES) {
      const url = lanes[priority];
      if (!url) continue;
      const copies = entries.filter(
        (e) => sent.has(e.id) && (e.priority ?? 'normal') === priority && !e.delaySeconds,
      );
      if (copies.length > 0) await this.sendTo(url, copies).catch(() => undefined);
    }
    return result;
  }

  private async sendTo(queueUrl: string, entries: readonly SendEntry[]): Promise<SendResult> {
    const sent: string[] = [];
    const failed: { id: string; code: string; message: string }[] = [];
    const sendable: SendEntry[] = [];
    for (const entry of entries) {
      const size = utf8Bytes(entry.body);
      if (size > SQS_MAX_MESSAGE_BYTES) {
        failed.push({
          id: entry.id,
          code: 'MESSAGE_TOO_LARGE',
          message: `message is ${size} bytes; SQS takes at most ${SQS_MAX_MESSAGE_BYTES}`,
        });
      } else {
        sendable.push(entry);
      }
    }
    for (const batch of batches(sendable)) {
      // SQS batch entry ids allow only [A-Za-z0-9_-]: use positions, map back to the caller's ids.
      let pending = batch.map((entry, index) => ({ entry, entryId: String(index) }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        const response = await this.options.client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: pending.map(({ entry, entryId }) => ({
              Id: entryId,
              MessageBody: entry.body,
              ...(entry.group ? { MessageGroupId: entry.group } : {}),
              ...(entry.delaySeconds ? { DelaySeconds: Math.min(900, Math.round(entry.delaySeconds)) } : {}),
            })),
          }),
        );
        const byId = new Map(pending.map((p) => [p.entryId, p]));
        for (const ok of response.Successful ?? []) {
          const item = byId.get(ok.Id ?? '');
          if (item) sent.push(item.entry.id);
        }
        const retry: typeof pending = [];
        for (const bad of response.Failed ?? []) {
          const item = byId.get(bad.Id ?? '');
          if (!item) continue;
          if (bad.SenderFault || attempt + 1 >= this.attempts) {
            failed.push({
              id: item.entry.id,
              code: bad.Code ?? 'UNKNOWN',
              message: bad.Message ?? 'no reason given',
            });
          } else {
            retry.push(item);
          }
        }
        pending = retry;
        if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, this.backoffMs(attempt)));
      }
    }
    return { sent, failed };
  }

  async receive(maxMessages: number, waitMs: number): Promise<QueueRecord[]> {
    const response = await this.options.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.options.queueUrl,
        MaxNumberOfMessages: Math.min(10, maxMessages),
        WaitTimeSeconds: Math.min(20, Math.floor(waitMs / 1000)),
        // AttributeNames (not MessageSystemAttributeNames): local-aws-sqs reads only these; SQS honours both.
        AttributeNames: ['All'],
      }),
    );
    return (response.Messages ?? []).map(recordFromMessage);
  }

  /**
   * One waiting job from the lanes above `than`, highest first. A short poll (no wait): it
   * samples some of SQS's servers, so with few messages in a lane a poll can miss one that
   * the next finds (README, "Priorities", on how long a high job can wait).
   */
  async takeAhead(than: Priority) {
    for (const lane of PRIORITIES.slice(0, PRIORITIES.indexOf(than))) {
      const url = this.options.laneUrls?.[lane];
      if (!url) continue;
      const { Messages } = await this.options.client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 1,
          WaitTimeSeconds: 0,
          AttributeNames: ['All'],
        }),
      );
      const message = Messages?.[0];
      if (!message) continue;
      const record: QueueRecord = { ...recordFromMessage(message), lane };
      return { record, done: () => this.delete(record) };
    }
    return undefined;
  }

  /** The queue a record came from: the job queue, or the lane it was taken ahead from. */
  private urlOf(record: QueueRecord): string {
    const lane = record.lane ? this.options.laneUrls?.[record.lane] : undefined;
    return lane ?? this.options.queueUrl;
  }

  async delete(record: QueueRecord): Promise<void> {
    await this.options.client.send(
      new DeleteMessageCommand({ QueueUrl: this.urlOf(record), ReceiptHandle: record.receiptHandle }),
    );
  }

  async changeVisibility(record: QueueRecord, seconds: number): Promise<void> {
    await this.options.client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.urlOf(record),
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: Math.min(43_200, Math.max(0, Math.round(seconds))),
      }),
    );
  }

  /** Sends the record to the dead-letter queue with its reason, then removes it from the queue. */
  async deadLetter(record: QueueRecord, reason: DeadLetterReason): Promise<void> {
    await this.options.client.send(
      new SendMessageCommand({
        QueueUrl: this.options.deadLetterQueueUrl,
        MessageBody: record.body,
        MessageAttributes: {
          'fanout.errorCode': { DataType: 'String', StringValue: reason.code },
          'fanout.reason': { DataType: 'String', StringValue: reason.message.slice(0, 1024) || '-' },
          'fanout.sourceMessageId': { DataType: 'String', StringValue: record.messageId },
        },
      }),
    );
    await this.delete(record);
  }
}

/**
 * The operator's side of the queues on SQS. Listing the dead letters receives them (SQS
 * has no other way to read a message), which hides them for five minutes; `redrive` moves
 * the ones the last listing returned: sends each to the job queue, then deletes it from
 * the dead-letter queue.
 */
export class SqsQueueAdmin implements QueueAdmin {
  private readonly listed = new Map<string, Message>();

  constructor(
    private readonly queue: SqsJobQueue,
    private readonly options: Pick<SqsJobQueueOptions, 'client' | 'queueUrl' | 'deadLetterQueueUrl'>,
  ) {}

  send(entries: readonly SendEntry[]): Promise<SendResult> {
    return this.queue.send(entries);
  }

  async depth(): Promise<QueueDepths> {
    const [queue, dlq] = await Promise.all([
      this.depthOf(this.options.queueUrl),
      this.depthOf(this.options.deadLetterQueueUrl),
    ]);
    return { visible: queue.visible, inFlight: queue.inFlight, deadLetters: dlq.visible + dlq.inFlight };
  }

  private async depthOf(url: string): Promise<{ visible: number; inFlight: number }> {
    const answer = await this.options.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(answer?.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(answer?.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }

  /** Every dead letter: those this admin listed before (still hidden by it) and the rest. */
  async deadLetters(): Promise<DeadLetter[]> {
    for (;;) {
      const { Messages } = await this.options.client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.options.deadLetterQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 300,
          AttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      if (!Messages || Messages.length === 0) break;
      for (const message of Messages) this.listed.set(message.MessageId ?? '', message);
    }
    return [...this.listed.values()].map((message) => {
      const attribute = (name: string) => message.MessageAttributes?.[name]?.StringValue;
      const record = recordFromMessage(message);
      return {
        id: record.messageId,
        body: record.body,
        sentAt: record.sentAt,
        receiveCount: record.receiveCount,
        // A message SQS moved itself (maxReceiveCount reached) carries no reason of ours.
        code: attribute('fanout.errorCode') ?? 'MAX_RECEIVES',
        reason: attribute('fanout.reason') ?? 'received the most times the queue allows',
        at: record.sentAt,
      };
    });
  }

  async redrive(ids: readonly string[]): Promise<number> {
    let moved = 0;
    for (const id of ids) {
      const message = this.listed.get(id);
      if (!message) continue;
      // Back into its repository's group and its priority's lane, as every send path puts it.
      const body = message.Body ?? '';
      const parsed = parseJobMessage(body);
      const entry = parsed.ok ? { ...queueEntry(parsed.message), body } : { id, body };
      const { failed } = await this.queue.send([entry]);
      if (failed[0]) {
        throw new FanoutError(
          'SERVICE_UNAVAILABLE',
          `dead letter ${id} could not be sent back to the queue (${failed[0].code}: ${failed[0].message}); it stays in the dead-letter queue: redrive again`,
        );
      }
      await this.options.client.send(
        new DeleteMessageCommand({
          QueueUrl: this.options.deadLetterQueueUrl,
          ReceiptHandle: message.ReceiptHandle,
        }),
      );
      this.listed.delete(id);
      moved++;
    }
    return moved;
  }
}

function recordFromMessage(message: Message): QueueRecord {
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    receiveCount: Number(message.Attributes?.ApproximateReceiveCount ?? 1),
    sentAt: Number(message.Attributes?.SentTimestamp ?? 0),
  };
}

/** A record as the Lambda SQS event source delivers it. */
export function recordFromLambda(record: SQSRecord): QueueRecord {
  return {
    messageId: record.messageId,
    receiptHandle: record.receiptHandle,
    body: record.body,
    receiveCount: Number(record.attributes.ApproximateReceiveCount),
    sentAt: Number(record.attributes.SentTimestamp),
  };
}
