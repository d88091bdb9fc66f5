import type { BatchResponse, QueueRecord } from '../ports/queue.js';
import { Attempt, decide, retryDelayFor } from './attempt.js';
import { type JobMessage, jobKey, type Priority, parseJobMessage, queueEntry } from './job.js';
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
  // A lane's copy is itself a job taken ahead: it takes none of its own.
  if (!record.lane) await runAhead(message.priority ?? 'normal', deps);
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
    model: agent.model ?? agent.name,
  });
  return attempt.end(decision, work);
}

/** SQS delays a message at most 15 minutes. */
const MAX_DELAY_SECONDS = 900;

/**
 * Another worker holds the job: come back when its lease would have expired. The delivery
 * is handed back as a new message, delayed as long, so that waiting on a live holder never
 * spends the message's receives (a job held for longer than maxReceiveCount leases would
 * otherwise reach the dead-letter queue while it runs). A lane's copy is dropped instead:
 * the job's own message is still on the queue. If the new message cannot be sent, the
 * delivery waits out the lease in the queue (a visibility change), as it did before.
 */
async function defer(
  record: QueueRecord,
  message: JobMessage,
  held: { readonly until: number; readonly owner: string },
  deps: WorkerDeps,
): Promise<RecordResult> {
  const key = jobKey(message.issue);
  const seconds = Math.min(MAX_DELAY_SECONDS, Math.max(1, Math.ceil((held.until - deps.clock()) / 1000)));
  deps.logger.info('job is leased by another worker; deferred', { jobKey: key, owner: held.owner, seconds });
  deps.onEvent?.({
    type: 'deferred',
    jobKey: key,
    reason: 'lease-held',
    until: deps.clock() + seconds * 1000,
  });
  if (record.lane) return { kind: 'ack', reason: 'deferred' };
  const handed = await deps.queue
    .send([{ ...queueEntry(message), delaySeconds: seconds }])
    .then((result) => result.failed.length === 0)
    .catch(() => false);
  if (handed) return { kind: 'ack', reason: 'deferred' };
  await deps.queue.changeVisibility(record, seconds);
  return { kind: 'retry', reason: 'lease-held' };
}

/**
 * A job taken ahead needs this much of the invocation left, or it would only checkpoint
 * (and the delivery the worker holds would wait for nothing).
 */
const AHEAD_MIN_REMAINING_MS = 60_000;

/**
 * Before a worker starts the job it was handed, it runs every job of a higher priority that
 * waits in a lane (AWS: the event source delivers in the queue's order, not by priority),
 * so a waiting high job starts before any waiting normal one. Its own delivery stays in
 * flight meanwhile (the visibility timeout covers the whole invocation), so it spends no
 * receive on the wait. A lane copy is deleted once its job is handled; one to try again
 * comes back after its backoff, like any delivery.
 */
async function runAhead(own: Priority, deps: WorkerDeps): Promise<void> {
  if (!deps.queue.takeAhead) return;
  while (deps.deadline - deps.clock() > AHEAD_MIN_REMAINING_MS && deps.signal?.aborted !== true) {
    const ahead = await deps.queue.takeAhead(own);
    if (!ahead) return;
    const result = await processRecord(ahead.record, deps).catch(async (error: unknown) => {
      deps.logger.error('a job taken ahead failed; its lane will offer it again', {
        messageId: ahead.record.messageId,
        error: String(error),
      });
      // A copy is a hint (the job's own message is on the queue): one that keeps failing is dropped.
      if (ahead.record.receiveCount >= deps.maxReceiveCount) await ahead.done().catch(() => undefined);
      else
        await deps.queue
          .changeVisibility(ahead.record, retryDelayFor(ahead.record, deps))
          .catch(() => undefined);
      return undefined;
    });
    if (result?.kind === 'ack') await ahead.done();
  }
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
