import { reservationId } from '../shared/domain/ledger.js';

/**
 * A virtual-clock simulation of the budget ledger's load on DynamoDB at fleet scale, for
 * `fanout bench`: N workers, each job a series of model calls, each call a reservation
 * (written before it) and a settlement (after it). Today's ledger keeps every open
 * reservation's id in the run's one item, so the item grows with the open reservations
 * and each write is billed by the item's size. DynamoDB's rules: a write costs one write
 * unit per KB of the larger of the item before and after it, one item (one partition
 * key's partition) takes at most 1,000 write units a second, and an item is at most 400 KB.
 */
export interface LedgerLoadOptions {
  readonly workers: number;
  /** A model call every this many ms per worker (reserve at its start). */
  readonly callEveryMs: number;
  /** The call's length: its settlement comes this long after its reservation. */
  readonly callMs: number;
  /** Model calls per job. */
  readonly callsPerJob: number;
  /** Virtual time simulated. */
  readonly durationMs: number;
  /** The run item's size without reservation ids (budget, spent, reserved, keys, TTL). */
  readonly baseItemBytes?: number;
}

export interface LedgerLoad {
  readonly workers: number;
  /** Writes a second to the busiest item, averaged over the run. */
  readonly writesPerSecond: number;
  /** Write units a second to the busiest item, in its busiest second. */
  readonly peakUnitsPerSecond: number;
  readonly peakItemBytes: number;
}

export const DYNAMODB_ITEM_UNITS_PER_SECOND = 1000;
export const DYNAMODB_MAX_ITEM_BYTES = 400 * 1024;

/** Bytes a string set element adds to an item: its UTF-8 length (DynamoDB's item-size rule). */
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

export function simulateLedgerLoad(options: LedgerLoadOptions): LedgerLoad {
  const base = options.baseItemBytes ?? 250;
  type Event = { at: number; kind: 'reserve' | 'settle'; id: string };
  const events: Event[] = [];
  for (let w = 0; w < options.workers; w++) {
    // Workers start spread over one call period, as a fleet does once it is running.
    const offset = Math.floor((w * options.callEveryMs) / options.workers);
    for (let at = offset, call = 0; at < options.durationMs; at += options.callEveryMs, call++) {
      const job = Math.floor(call / options.callsPerJob);
      const id = reservationId(
        { jobKey: `acme/service-${w % 50}#${10_000 + w * 100 + job}`, owner: `${crypto.randomUUID()}` },
        (call % options.callsPerJob) + 1,
        150_000,
        1_764_000_000_000 + at,
      );
      events.push({ at, kind: 'reserve', id });
      events.push({ at: at + options.callMs, kind: 'settle', id });
    }
  }
  // At one instant a settlement goes first: the call that ends frees its bytes before the next begins.
  events.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === 'settle' ? -1 : 1));
  let size = base;
  let peakItemBytes = base;
  let writes = 0;
  const unitsBySecond = new Map<number, number>();
  for (const event of events) {
    if (event.at >= options.durationMs) continue;
    const before = size;
    size += event.kind === 'reserve' ? bytes(event.id) : -bytes(event.id);
    const units = Math.ceil(Math.max(before, size) / 1024);
    const second = Math.floor(event.at / 1000);
    unitsBySecond.set(second, (unitsBySecond.get(second) ?? 0) + units);
    peakItemBytes = Math.max(peakItemBytes, size);
    writes++;
  }
  return {
    workers: options.workers,
    writesPerSecond: writes / (options.durationMs / 1000),
    peakUnitsPerSecond: Math.max(0, ...unitsBySecond.values()),
    peakItemBytes,
  };
}
