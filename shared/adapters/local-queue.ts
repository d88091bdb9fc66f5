import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { FanoutError } from '../domain/errors.js';
import { PRIORITIES, type Priority } from '../domain/job.js';
import type {
  DeadLetter,
  DeadLetterReason,
  JobQueue,
  QueueDepths,
  QueueRecord,
  SendEntry,
  SendResult,
} from '../ports/queue.js';
import { checksummedLine, readChecksummedLine } from './checksummed-lines.js';

export const JOURNAL_FILE = 'journal.jsonl';

export interface LocalQueueOptions {
  /** How long a received message stays hidden before it is delivered again. */
  readonly visibilityTimeoutMs: number;
  /** Deliveries after which the next receive moves the message to the dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly clock?: () => number;
}

interface Message {
  readonly id: string;
  readonly body: string;
  readonly sentAt: number;
  /** Its fairness group (the repository); '' when it was sent without one. */
  readonly group: string;
  readonly priority: Priority;
  receiveCount: number;
  visibleAt: number;
  receipt?: string;
}

type JournalEntry =
  /** `p` is absent for normal priority. */
  /** `d`: seconds after `t` before it is first visible. */
  | { op: 'S'; id: string; body: string; t: number; g?: string; p?: Priority; d?: number }
  | { op: 'R'; id: string; n: number }
  | { op: 'D'; id: string }
  | { op: 'L'; id: string; code: string; reason: string; t: number }
  | { op: 'X'; id: string };

/** One call's entries, when it has more than one: a single line, so a crash keeps all of them or none. */
type JournalLine = JournalEntry | { op: 'B'; e: JournalEntry[] };

/**
 * A queue with SQS semantics (visibility timeout, receive count, dead-letter queue
 * after maxReceiveCount, stale receipts ignored) for the local runtime. Every change
 * is appended to a journal under the state dir before it takes effect in memory, so
 * a stopped run loses nothing; opening the queue replays and compacts the journal.
 *
 * Each journal line carries its CRC-32. A crash can leave only the last line torn (it
 * has no newline yet): that change never took effect and is dropped. Any other bad line
 * means the file was damaged, and messages may be lost: the queue refuses to open,
 * names the file and the way out (`fanout repair`), and leaves the file as it is.
 */
export class LocalQueue implements JobQueue {
  private readonly messages = new Map<string, Message>();
  private readonly dead = new Map<
    string,
    DeadLetter & { readonly group: string; readonly priority: Priority }
  >();
  /**
   * Per priority (high first), the messages of each fairness group, oldest first, and the
   * group whose turn is next.
   */
  private readonly lanes = PRIORITIES.map(() => ({
    groups: new Map<string, Map<string, Message>>(),
    turn: 0,
  }));
  private readonly waiters = new Set<() => void>();
  private readonly clock: () => number;
  private fd: number | undefined;
  /** Where a damaged journal was moved when the queue was opened to salvage it. */
  salvagedTo: string | undefined;

  private constructor(
    private readonly file: string | undefined,
    private readonly options: LocalQueueOptions,
  ) {
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Opens the queue persisted in `dir` (or an in-memory one when `dir` is undefined).
   * With `salvage`, a damaged journal is moved aside and what can be read of it is kept
   * (for `fanout repair`, which then rebuilds what is missing from the state table).
   */
  static open(dir: string | undefined, options: LocalQueueOptions & { salvage?: boolean }): LocalQueue {
    if (dir === undefined) return new LocalQueue(undefined, options);
    mkdirSync(dir, { recursive: true });
    const queue = new LocalQueue(join(dir, JOURNAL_FILE), options);
    queue.replay(options.salvage === true);
    return queue;
  }

  private replay(salvage: boolean): void {
    const file = this.file as string;
    if (existsSync(file)) {
      const text = readFileSync(file, 'utf8');
      const lines = text.split('\n');
      const damaged: number[] = [];
      lines.forEach((line, i) => {
        if (!line) return;
        const entry = readChecksummedLine<JournalLine>(line);
        // The last line without its newline was being written when the process died.
        if (!entry && i === lines.length - 1) return;
        if (!entry) damaged.push(i + 1);
        else if (entry.op === 'B') for (const one of entry.e) this.apply(one);
        else this.apply(entry);
      });
      if (damaged.length > 0) {
        if (!salvage) {
          throw new FanoutError(
            'STATE_DAMAGED',
            `the queue journal ${file} is damaged (${
              damaged.length === 1
                ? `line ${damaged[0]} fails its checksum`
                : `lines ${damaged.slice(0, 5).join(', ')}${damaged.length > 5 ? ', ...' : ''} fail their checksums`
            }): jobs may be missing from the queue, so nothing ` +
              'was run. Rebuild the queue from the state table with `fanout repair` (the damaged file is kept beside it).',
          );
        }
        this.salvagedTo = `${file}.damaged-${Date.now()}`;
        renameSync(file, this.salvagedTo);
      }
    }
    // Whoever held messages in flight was a worker of a dispatcher that has stopped:
    // nothing is working on them now, so they are visible again (receive counts kept).
    const now = this.clock();
    for (const message of this.messages.values()) {
      message.visibleAt = Math.min(message.visibleAt, now);
      message.receipt = undefined;
    }
    const temp = `${file}.tmp`;
    const fd = openSync(temp, 'w');
    for (const m of this.messages.values()) {
      writeSync(fd, checksummedLine(sendLine(m.id, m.body, m.sentAt, m.group, m.priority)));
      if (m.receiveCount > 0) writeSync(fd, checksummedLine({ op: 'R', id: m.id, n: m.receiveCount }));
    }
    for (const d of this.dead.values()) {
      writeSync(fd, checksummedLine(sendLine(d.id, d.body, d.sentAt, d.group, d.priority)));
      writeSync(fd, checksummedLine({ op: 'R', id: d.id, n: d.receiveCount }));
      writeSync(fd, checksummedLine({ op: 'L', id: d.id, code: d.code, reason: d.reason, t: d.at }));
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, file);
    this.fd = openSync(file, 'a');
  }

  private apply(entry: JournalEntry): void {
    switch (entry.op) {
      case 'S':
        this.add({
          id: entry.id,
          body: entry.body,
          sentAt: entry.t,
          group: entry.g ?? '',
          priority: entry.p ?? 'normal',
          receiveCount: 0,
          visibleAt: entry.d ? entry.t + entry.d * 1000 : 0,
        });
        break;
      case 'R': {
        const message = this.messages.get(entry.id);
        if (message) message.receiveCount = entry.n;
        break;
      }
      case 'D':
        this.remove(entry.id);
        break;
      case 'L': {
        const message = this.messages.get(entry.id);
        if (!message) break;
        this.remove(entry.id);
        this.dead.set(entry.id, {
          id: message.id,
          body: message.body,
          sentAt: message.sentAt,
          group: message.group,
          priority: message.priority,
          receiveCount: message.receiveCount,
          code: entry.code,
          reason: entry.reason,
          at: entry.t,
        });
        break;
      }
      case 'X': {
        const letter = this.dead.get(entry.id);
        if (!letter) break;
        this.dead.delete(entry.id);
        this.add({
          id: letter.id,
          body: letter.body,
          sentAt: letter.sentAt,
          group: letter.group,
          priority: letter.priority,
          receiveCount: 0,
          visibleAt: 0,
        });
        break;
      }
    }
  }

  private add(message: Message): void {
    this.messages.set(message.id, message);
    const { groups } = this.laneOf(message);
    let group = groups.get(message.group);
    if (!group) {
      group = new Map();
      groups.set(message.group, group);
    }
    group.set(message.id, message);
  }

  private remove(id: string): void {
    const message = this.messages.get(id);
    if (!message) return;
    this.messages.delete(id);
    const { groups } = this.laneOf(message);
    const group = groups.get(message.group);
    group?.delete(id);
    if (group?.size === 0) groups.delete(message.group);
  }

  private laneOf(message: Message) {
    return this.lanes[PRIORITIES.indexOf(message.priority)] as LocalQueue['lanes'][number];
  }

  /**
   * Journal first, then memory: what is in memory is always on disk (in the file, so a
   * killed process loses nothing that a call returned; the file is not fsynced, so a
   * machine that loses power can lose the last writes). A call's entries are one line and
   * one write: a crash keeps all of them or none (its checksum fails and the line is
   * dropped), and a send of many messages costs one write, not one each.
   */
  private record(entries: readonly JournalEntry[]): void {
    if (entries.length === 0) return;
    const line: JournalLine =
      entries.length === 1 ? (entries[0] as JournalEntry) : { op: 'B', e: [...entries] };
    if (this.fd !== undefined) writeSync(this.fd, checksummedLine(line));
    for (const entry of entries) this.apply(entry);
  }

  private wake(): void {
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }

  async send(entries: readonly SendEntry[]): Promise<SendResult> {
    const now = this.clock();
    this.record(
      entries.map((entry) => ({
        ...sendLine(randomUUID(), entry.body, now, entry.group, entry.priority),
        ...(entry.delaySeconds ? { d: entry.delaySeconds } : {}),
      })),
    );
    this.wake();
    return { sent: entries.map((entry) => entry.id), failed: [] };
  }

  async receive(maxMessages: number, waitMs: number): Promise<QueueRecord[]> {
    const until = this.clock() + waitMs;
    for (;;) {
      const records = this.take(maxMessages);
      if (records.length > 0 || this.clock() >= until) return records;
      await this.waitForVisible(until);
    }
  }

  /**
   * The next visible messages: every visible message of a higher priority before any of a
   * lower one (strict priority, as the priority lanes give on AWS); within a priority, the
   * groups take turns: one message from each group that has one visible, in a rotating
   * order, oldest first within a group. So a repository with a large backlog does not hold
   * back one with a few jobs: theirs are delivered within a round of the groups. (SQS fair
   * queues favour the groups with fewer messages in flight; taking turns gives the same
   * share to groups that are all backlogged, and is what is modelled here.)
   */
  private take(maxMessages: number): QueueRecord[] {
    const now = this.clock();
    const taken: Message[] = [];
    const entries: JournalEntry[] = [];
    const chosen = new Set<string>();
    for (const lane of this.lanes) {
      const order = [...lane.groups.keys()];
      let idle = 0;
      while (taken.length < maxMessages && order.length > 0 && idle < order.length) {
        const name = order[lane.turn % order.length] as string;
        lane.turn = (lane.turn + 1) % order.length;
        const next = this.firstVisible(lane.groups.get(name), now, chosen, entries);
        if (!next) {
          idle++;
          continue;
        }
        idle = 0;
        chosen.add(next.id);
        entries.push({ op: 'R', id: next.id, n: next.receiveCount + 1 });
        taken.push(next);
      }
    }
    this.record(entries);
    return taken.map((message) => {
      message.visibleAt = now + this.options.visibilityTimeoutMs;
      message.receipt = randomUUID();
      return {
        messageId: message.id,
        receiptHandle: message.receipt,
        body: message.body,
        receiveCount: message.receiveCount,
        sentAt: message.sentAt,
      };
    });
  }

  /** A group's oldest visible message not chosen yet; one received too often goes to the dead letters. */
  private firstVisible(
    group: Map<string, Message> | undefined,
    now: number,
    chosen: Set<string>,
    entries: JournalEntry[],
  ): Message | undefined {
    for (const message of group?.values() ?? []) {
      if (message.visibleAt > now || chosen.has(message.id)) continue;
      if (message.receiveCount >= this.options.maxReceiveCount) {
        chosen.add(message.id);
        entries.push({
          op: 'L',
          id: message.id,
          code: 'MAX_RECEIVES_EXCEEDED',
          reason: `received ${message.receiveCount} times without success (maxReceiveCount ${this.options.maxReceiveCount})`,
          t: now,
        });
        continue;
      }
      return message;
    }
    return undefined;
  }

  private waitForVisible(until: number): Promise<void> {
    let next = until;
    for (const message of this.messages.values()) next = Math.min(next, message.visibleAt);
    const delay = Math.max(1, next - this.clock());
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, delay);
      this.waiters.add(done);
    });
  }

  /** The message behind a receipt, or undefined when the receipt is stale (as SQS ignores it). */
  private current(record: QueueRecord): Message | undefined {
    const message = this.messages.get(record.messageId);
    return message && message.receipt === record.receiptHandle ? message : undefined;
  }

  async delete(record: QueueRecord): Promise<void> {
    if (this.current(record)) this.record([{ op: 'D', id: record.messageId }]);
  }

  async changeVisibility(record: QueueRecord, seconds: number): Promise<void> {
    const message = this.current(record);
    if (!message) return;
    message.visibleAt = this.clock() + seconds * 1000;
    if (seconds === 0) this.wake();
  }

  async deadLetter(record: QueueRecord, reason: DeadLetterReason): Promise<void> {
    if (!this.current(record)) return;
    this.record([
      { op: 'L', id: record.messageId, code: reason.code, reason: reason.message, t: this.clock() },
    ]);
  }

  /** Moves dead letters back to the queue with a fresh receive count. */
  redrive(ids?: readonly string[]): number {
    const chosen = new Set(ids ?? this.dead.keys());
    const entries = [...chosen]
      .filter((id) => this.dead.has(id))
      .map((id): JournalEntry => ({ op: 'X', id }));
    this.record(entries);
    if (entries.length > 0) this.wake();
    return entries.length;
  }

  depth(): QueueDepths {
    const now = this.clock();
    let visible = 0;
    for (const message of this.messages.values()) if (message.visibleAt <= now) visible++;
    return { visible, inFlight: this.messages.size - visible, deadLetters: this.dead.size };
  }

  /** True when every message sent has been deleted or dead-lettered. */
  isEmpty(): boolean {
    return this.messages.size === 0;
  }

  deadLetters(): DeadLetter[] {
    return [...this.dead.values()];
  }

  /** Bodies of messages still on the queue (visible or in flight). */
  pendingBodies(): string[] {
    return [...this.messages.values()].map((message) => message.body);
  }

  close(): void {
    this.wake();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A send's journal entry; normal priority and no group are left out, as the journal's older lines have them. */
function sendLine(id: string, body: string, t: number, group?: string, priority?: Priority): JournalEntry {
  return {
    op: 'S',
    id,
    body,
    t,
    ...(group ? { g: group } : {}),
    ...(priority && priority !== 'normal' ? { p: priority } : {}),
  };
}
