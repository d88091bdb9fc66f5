import type { BatchResponse, QueueRecord } from '../ports/queue.js';
import { Attempt, decide, retryDelayFor } from './attempt.js';
import { type JobMessage, jobKey, parseJobMessage } from './job.js';
import type { RecordResult, WorkerDeps } from './worker-deps.js';

export type { RecordResult, WorkerDeps, WorkerEvent } from './worker-deps.js';

/**
 * The life of one delivery of a job: parse, take the lease (with the first reservation),
 * work under a heartbeat, decide what became of the job, apply that once.
 */
export async function processRecord(record: QueueRecord, deps: WorkerDeps): Promise<RecordResult> {
  const parsed = parseJobMessage(record.body);
  if (!parsed.ok) {
    // A poison message fails alone and at once, with its reason (invariant 5).
    deps.logger.warn('poison message sent to the dead-letter queue', {
      messageId: record.messageId,
      reason: parsed.reason,
    });
    await deps.queue.deadLetter(record, { code: 'INVALID_MESSAGE', message: parsed.reason });
    return { kind: 'rejected', reason: 'poison' };
  }
  const message = parsed.message;
  const agent = message.agent && deps.agentFor ? deps.agentFor(message.agent) : deps.agent;

  const taken = await Attempt.begin(record, message, agent, deps);
  if (taken.kind === 'finished') {
    deps.logger.info('job already finished; delivery acknowledged', {
      jobKey: jobKey(message.issue),
      status: taken.status,
    });
    return { kind: 'ack', reason: 'already-finished', status: taken.status };
  }
  if (taken.kind === 'held') return defer(record, message, taken, deps);

  const { attempt } = taken;
  const work = await attempt.work(agent);
  const decision = decide(work, {
    message,
    receiveCount: record.receiveCount,
    maxReceiveCount: deps.maxReceiveCount,
    stopping: deps.signal?.aborted === true,
    workerId: deps.workerId,
  });
  return attempt.end(decision, work);
}

/** Another worker holds the job: come back when its lease would have expired. */
async function defer(
  record: QueueRecord,
  message: JobMessage,
  held: { readonly until: number; readonly owner: string },
  deps: WorkerDeps,
): Promise<RecordResult> {
  const seconds = Math.max(1, Math.ceil((held.until - deps.clock()) / 1000));
  deps.logger.info('job is leased by another worker; deferred', {
    jobKey: jobKey(message.issue),
    owner: held.owner,
    seconds,
  });
  await deps.queue.changeVisibility(record, seconds);
  deps.onEvent?.({
    type: 'deferred',
    jobKey: jobKey(message.issue),
    reason: 'lease-held',
    until: deps.clock() + seconds * 1000,
  });
  return { kind: 'retry', reason: 'lease-held' };
}

/**
 * Handles a batch the way the SQS event source expects: every record on its own,
 * and only the records that must come back reported as failures (invariant 5).
 */
export async function processBatch(
  records: readonly QueueRecord[],
  deps: WorkerDeps,
): Promise<BatchResponse> {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of records) {
    let result: RecordResult;
    try {
      result = await processRecord(record, deps);
    } catch (error) {
      deps.logger.error('record failed; the queue will deliver it again', {
        messageId: record.messageId,
        error: String(error),
      });
      // Back off rather than wait out the visibility timeout; if even that fails, the timeout stands.
      await deps.queue.changeVisibility(record, retryDelayFor(record, deps)).catch(() => undefined);
      result = { kind: 'retry', reason: 'retryable-error' };
    }
    // A rejected record is already in the dead-letter queue; reporting it failed changes
    // nothing on the queue, and it shows as a failure in the function's metrics.
    if (result.kind !== 'ack') batchItemFailures.push({ itemIdentifier: record.messageId });
  }
  return { batchItemFailures };
}
