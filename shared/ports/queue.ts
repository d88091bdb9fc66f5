import type { ErrorCode } from '../domain/errors.js';
import type { Priority } from '../domain/job.js';

/** One delivery of a queue message, as SQS (and the local queue) hands it to a worker. */
export interface QueueRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  /** How many times this message has been received, this delivery included. */
  readonly receiveCount: number;
  readonly sentAt: number;
  /**
   * Set when the record is a job's copy in its priority's lane (AWS), taken ahead of the
   * delivery a worker holds: the queue message in the job queue is still the job's own.
   */
  readonly lane?: Priority;
}

export interface DeadLetterReason {
  readonly code: ErrorCode;
  readonly message: string;
}

/** What a worker may do to the queue while it handles a record. */
export interface QueueControl {
  /** Hides the record for `seconds` more (0 makes it visible at once). */
  changeVisibility(record: QueueRecord, seconds: number): Promise<void>;
  /** Moves the record to the dead-letter queue now, with its reason. */
  deadLetter(record: QueueRecord, reason: DeadLetterReason): Promise<void>;
  /** Sends new messages (a job's continuation). */
  send(entries: readonly SendEntry[]): Promise<SendResult>;
  /**
   * A waiting job of a higher priority than `than`, taken from its lane (`done` deletes it
   * there), or undefined when none waits. Only a queue with priority lanes has it (SQS: its
   * delivery order is not priority's); the local queue delivers by priority itself.
   */
  takeAhead?(than: Priority): Promise<{ record: QueueRecord; done(): Promise<void> } | undefined>;
}

export interface SendEntry {
  readonly id: string;
  readonly body: string;
  /**
   * The message's fairness group, its repository (`messageGroupOf`): SQS's MessageGroupId,
   * by which a fair queue keeps one group's backlog from delaying the others.
   */
  readonly group?: string;
  /** Normal when absent: a waiting message starts before every waiting one of a lower priority. */
  readonly priority?: Priority;
  /**
   * Seconds before the message can be received (at most 900): a delivery handed back for
   * later. A delayed entry gets no lane copy: it has nothing to go ahead of.
   */
  readonly delaySeconds?: number;
}

export interface SendResult {
  readonly sent: readonly string[];
  readonly failed: readonly { id: string; code: string; message: string }[];
}

/** The producer's and the event source's side of the queue. */
export interface JobQueue extends QueueControl {
  receive(maxMessages: number, waitMs: number): Promise<QueueRecord[]>;
  delete(record: QueueRecord): Promise<void>;
}

/** How many messages wait, are being worked, and lie in the dead-letter queue. */
export interface QueueDepths {
  readonly visible: number;
  readonly inFlight: number;
  readonly deadLetters: number;
}

/** A message in the dead-letter queue, with why it is there. */
export interface DeadLetter {
  readonly id: string;
  readonly body: string;
  readonly sentAt: number;
  readonly receiveCount: number;
  readonly code: string;
  readonly reason: string;
  readonly at: number;
}

/**
 * The operator's side of the queue (`send`, `status`, `report`, `redrive`): every method
 * takes at most one argument of plain data, so a live run can serve it over loopback
 * route by route (shared/local/live-routes.ts).
 */
export interface QueueAdmin {
  send(entries: readonly SendEntry[]): Promise<SendResult>;
  depth(): Promise<QueueDepths>;
  deadLetters(): Promise<DeadLetter[]>;
  /** Moves the named dead letters back onto the queue; returns how many moved. */
  redrive(ids: readonly string[]): Promise<number>;
}

export interface BatchResponse {
  readonly batchItemFailures: { itemIdentifier: string }[];
}
