import type { RunReport } from '../shared/domain/report.js';
import { formatMs, formatUsd, plural } from '../shared/domain/units.js';
import type { DispatchEvent } from '../shared/local/dispatcher.js';
import type { RunEvent } from '../shared/local/local-run.js';

const ISSUE_WIDTH = 32;

/** The text, or its start and end around an ellipsis when it is longer than `width`. */
export function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  const tail = Math.ceil((width - 1) / 2);
  return `${text.slice(0, width - 1 - tail)}…${text.slice(text.length - tail)}`;
}

interface Row {
  state: string;
  jobKey?: string;
  since?: number;
  completed: number;
  costMicros: number;
}

/**
 * The live view of a local run: one row per worker, queue depth, outcomes and spend.
 * Redraws in place on a terminal; prints one plain line per event otherwise.
 */
export class LiveTable {
  private readonly rows = new Map<string, Row>();
  private header = '';
  private queueLine = '';
  private ledgerLine = '';
  private drawnLines = 0;
  /** Jobs waiting for another (often a dead) worker's lease to end, and when it does. */
  private readonly waiting = new Map<string, number>();
  private done = 0;
  private failed = 0;
  private skipped = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
  ) {}

  private row(workerId: string): Row {
    let row = this.rows.get(workerId);
    if (!row) {
      row = { state: 'starting', completed: 0, costMicros: 0 };
      this.rows.set(workerId, row);
    }
    return row;
  }

  private line(text: string): void {
    if (!this.tty) this.out.write(`${text}\n`);
  }

  async onEvent(event: DispatchEvent | RunEvent): Promise<void> {
    switch (event.type) {
      case 'run':
        this.header = `fanout ${event.runId}${event.resumed ? ' (resumed)' : ''}`;
        this.line(
          `${this.header}: ${plural(event.send.sent.length, 'job')} sent, ${event.send.duplicates.length} already in the run`,
        );
        break;
      case 'slot': {
        const row = this.row(event.workerId);
        if (event.state !== 'busy') row.state = event.state;
        break;
      }
      case 'starting': {
        // A plain line at each quarter (and the last), so a large fleet shows it is coming up.
        const quarter = Math.max(1, Math.ceil(event.total / 4));
        if (event.ready % quarter === 0 || event.ready === event.total) {
          if (this.tty)
            this.header = `${this.header.replace(/ \(starting.*$/, '')} (starting: ${event.ready}/${event.total} workers ready)`;
          else this.line(`workers ready: ${event.ready}/${event.total}`);
        }
        if (event.ready === event.total) this.header = this.header.replace(/ \(starting.*$/, '');
        break;
      }
      case 'crash': {
        const row = this.row(event.workerId);
        row.state = 'restarting';
        row.jobKey = undefined;
        this.line(
          `${event.workerId} crashed (${event.reason}); a new process takes its place, and its jobs go back ` +
            "on the queue to run once the dead worker's lease ends",
        );
        break;
      }
      case 'worker': {
        const row = this.row(event.workerId);
        const e = event.event;
        if (e.type !== 'deferred' && 'jobKey' in e) this.waiting.delete(e.jobKey);
        if (e.type === 'started') {
          Object.assign(row, { state: 'busy', jobKey: e.jobKey, since: Date.now() });
          this.line(`${event.workerId} started ${e.jobKey}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
        } else if (e.type === 'finished') {
          Object.assign(row, { state: 'idle', jobKey: undefined });
          row.completed++;
          row.costMicros += e.costMicros;
          if (e.status === 'DONE') this.done++;
          else if (e.status === 'FAILED') this.failed++;
          else this.skipped++;
          this.line(
            `${event.workerId} ${e.status}${e.errorCode ? ` (${e.errorCode})` : ''} ${e.jobKey} ${formatMs(e.durationMs)} ${formatUsd(e.costMicros)}`,
          );
        } else if (e.type === 'returned') {
          Object.assign(row, { state: 'idle', jobKey: undefined });
          this.line(
            `${event.workerId} returned ${e.jobKey} to the queue (${e.reason}${e.message ? `: ${e.message}` : ''})`,
          );
        } else if (e.type === 'continued') {
          Object.assign(row, { state: 'idle', jobKey: undefined });
          this.line(`${event.workerId} checkpointed ${e.jobKey}; continuation ${e.continuation} queued`);
        } else if (e.type === 'deferred') {
          this.waiting.set(e.jobKey, e.until);
          this.line(
            `${event.workerId} deferred ${e.jobKey}: another worker holds its lease, which ends in ${formatMs(Math.max(0, e.until - Date.now()))}`,
          );
        }
        break;
      }
      case 'tick': {
        if (!this.tty) return;
        const depth = event.queue.depth();
        this.queueLine = `queue ${depth.visible} waiting, ${depth.inFlight} in flight, ${depth.deadLetters} dead-lettered`;
        const run = await event.state.getRun(event.runId);
        if (run) {
          const reserved = run.reservedMicros > 0 ? ` (+${formatUsd(run.reservedMicros)} reserved)` : '';
          this.ledgerLine = `spent ${formatUsd(run.spentMicros)}${reserved} of ${formatUsd(run.budgetMicros)}`;
        }
        break;
      }
    }
    this.draw();
  }

  private draw(): void {
    if (!this.tty) return;
    const now = Date.now();
    const lines = [
      this.header,
      `${'worker'.padEnd(11)}${'state'.padEnd(12)}${'issue'.padEnd(ISSUE_WIDTH)}${'completed'.padEnd(11)}cost`,
      ...[...this.rows.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([id, row]) => {
          const since = formatMs(now - (row.since ?? now));
          // A long key is cut in its middle, so the columns stay put and the issue number shows.
          const issue = row.jobKey ? `${shorten(row.jobKey, ISSUE_WIDTH - since.length - 2)} ${since}` : '-';
          return `${id.padEnd(11)}${row.state.padEnd(12)}${issue.padEnd(ISSUE_WIDTH)}${String(row.completed).padEnd(11)}${formatUsd(row.costMicros)}`;
        }),
      `${this.queueLine}   done ${this.done}  failed ${this.failed}  skipped ${this.skipped}   ${this.ledgerLine}`,
      ...this.waitingLine(now),
    ];
    const clear = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    this.out.write(`${clear}${lines.map((l) => `\x1b[2K${l}`).join('\n')}\n`);
    this.drawnLines = lines.length;
  }

  /** Jobs that wait for a lease to end: after a crash the run may idle until then, and says for how long. */
  private waitingLine(now: number): string[] {
    for (const [key, until] of this.waiting) if (until < now - 5000) this.waiting.delete(key);
    if (this.waiting.size === 0) return [];
    const next = Math.min(...this.waiting.values());
    return [
      `${plural(this.waiting.size, 'job')} waiting for another worker's lease to end (next in ${formatMs(Math.max(0, next - now))})`,
    ];
  }

  /** The last frame, from the report, so the table ends on the run's final state. */
  finish(report: RunReport): void {
    const pending = report.totals.PENDING + report.totals.RUNNING;
    this.queueLine = `queue ${pending} left, ${report.deadLetters.length} dead-lettered`;
    this.ledgerLine = `spent ${formatUsd(Math.round(report.costUsd.spent * 1e6))} of ${formatUsd(Math.round(report.costUsd.budget * 1e6))}`;
    this.draw();
  }

  message(text: string): void {
    this.out.write(`${text}\n`);
    this.drawnLines = 0;
  }
}
