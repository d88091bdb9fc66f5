import { homeShard } from '../shared/adapters/dynamo/run-ledger.js';
import { LEDGER_SHARDS } from '../shared/adapters/dynamo/schema.js';
import { reservationId } from '../shared/domain/ledger.js';
import { seededRandom } from '../shared/domain/random.js';

/**
 * A virtual-clock simulation of the budget ledger's load on DynamoDB at fleet scale, for
 * `fanout bench`: N workers, each job a series of model calls, each call a reservation
 * (written before it) and a settlement (after it). DynamoDB's rules: a write costs one
 * write unit per KB of the larger of the item before and after it, one item (one
 * partition key's partition) takes at most 1,000 write units a second, and an item is at
 * most 400 KB. Two designs:
 *   single-item  the ledger before #13: every write on the run's one item, which keeps the
 *                id of every open reservation (jobKey|owner|seq|amount|at, about 70 bytes)
 *   sharded      today's (shared/adapters/dynamo/run-ledger.ts): a reservation and its
 *                settlement are writes on one of LEDGER_SHARDS shard items (the same
 *                placement as the adapter's), with today's short ids; a shard short of
 *                credit takes a chunk from the run item's pool (a write on each)
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
  readonly design?: 'single-item' | 'sharded';
  readonly shards?: number;
}

export interface LedgerLoad {
  readonly workers: number;
  readonly design: 'single-item' | 'sharded';
  /** Writes a second to the busiest item, averaged over the run. */
  readonly writesPerSecond: number;
  /** Write units a second to the busiest item, in its busiest second. */
  readonly peakUnitsPerSecond: number;
  readonly peakItemBytes: number;
  /** Writes a second to the run item (its pool), averaged over the run: 0 for the single item, where every write is the run item's. */
  readonly poolWritesPerSecond: number;
}

/** The llm agent's fleet as the README's table has it: a call every 5 s per worker, 4 s long, 6 a job, a minute. */
export const LLM_FLEET = { callEveryMs: 5000, callMs: 4000, callsPerJob: 6, durationMs: 60_000 } as const;

export const DYNAMODB_ITEM_UNITS_PER_SECOND = 1000;
export const DYNAMODB_MAX_ITEM_BYTES = 400 * 1024;

/** Bytes a string set element adds to an item: its UTF-8 length (DynamoDB's item-size rule). */
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** The id the single-item ledger used: it named the job and owner in full. */
const legacyReservationId = (jobKey: string, owner: string, sequence: number, amount: number, at: number) =>
  [jobKey, owner, sequence, amount, at].join('|');

const CALL_WORST_MICROS = 150_000;
const CALL_ACTUAL_MICROS = 90_000;
/** The items' sizes without reservation ids: keys, counters, TTL (the run item with 32 shards' g/r counters). */
const SINGLE_ITEM_BASE_BYTES = 250;
const SHARD_BASE_BYTES = 220;
const POOL_BASE_BYTES = 900;

function uuidLike(n: number): string {
  const next = seededRandom(n, 'ledger-sim');
  const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

interface ItemLoad {
  size: number;
  peak: number;
  writes: number;
  readonly unitsBySecond: Map<number, number>;
}

function write(item: ItemLoad, at: number, change: number): void {
  const before = item.size;
  item.size += change;
  const second = Math.floor(at / 1000);
  item.unitsBySecond.set(
    second,
    (item.unitsBySecond.get(second) ?? 0) + Math.ceil(Math.max(before, item.size) / 1024),
  );
  item.peak = Math.max(item.peak, item.size);
  item.writes++;
}

export function simulateLedgerLoad(options: LedgerLoadOptions): LedgerLoad {
  const design = options.design ?? 'single-item';
  const shards = design === 'sharded' ? (options.shards ?? LEDGER_SHARDS) : 1;
  type Event = { at: number; kind: 'reserve' | 'settle'; id: string; shard: number };
  const events: Event[] = [];
  for (let w = 0; w < options.workers; w++) {
    // Workers start spread over one call period, as a fleet does once it is running.
    const offset = Math.floor((w * options.callEveryMs) / options.workers);
    for (let at = offset, call = 0; at < options.durationMs; at += options.callEveryMs, call++) {
      const jobKey = `acme/service-${w % 50}#${10_000 + w * 100 + Math.floor(call / options.callsPerJob)}`;
      // An invocation's id is a UUID (36 characters): a fixed one per worker and call, so the figures repeat.
      const owner = uuidLike(w * 100_003 + call);
      const sequence = (call % options.callsPerJob) + 1;
      const when = 1_764_000_000_000 + at;
      const id =
        design === 'sharded'
          ? reservationId({ jobKey, owner }, sequence, CALL_WORST_MICROS, when)
          : legacyReservationId(jobKey, owner, sequence, CALL_WORST_MICROS, when);
      const shard = homeShard(id, shards);
      events.push({ at, kind: 'reserve', id, shard });
      events.push({ at: at + options.callMs, kind: 'settle', id, shard });
    }
  }
  // At one instant a settlement goes first: the call that ends frees its bytes before the next begins.
  events.sort((a, b) => a.at - b.at || (a.kind === b.kind ? 0 : a.kind === 'settle' ? -1 : 1));
  const item = (size: number): ItemLoad => ({ size, peak: size, writes: 0, unitsBySecond: new Map() });
  const items = Array.from({ length: shards }, () =>
    item(design === 'sharded' ? SHARD_BASE_BYTES : SINGLE_ITEM_BASE_BYTES),
  );
  const pool = item(POOL_BASE_BYTES);
  // The sharded ledger's credit: a budget that the simulated calls do not exhaust.
  const calls = events.length / 2;
  let poolMicros = calls * CALL_WORST_MICROS * 2;
  const available = new Array<number>(shards).fill(0);
  for (const event of events) {
    if (event.at >= options.durationMs) continue;
    const shard = items[event.shard] as ItemLoad;
    if (event.kind === 'reserve') {
      if (design === 'sharded' && (available[event.shard] ?? 0) < CALL_WORST_MICROS) {
        // The adapter's refill: a chunk of a share of the pool, a write on the pool then on the shard.
        const chunk = Math.max(CALL_WORST_MICROS, Math.floor(poolMicros / (4 * shards)));
        poolMicros -= chunk;
        available[event.shard] = (available[event.shard] ?? 0) + chunk;
        write(pool, event.at, 0);
        write(shard, event.at, 0);
      }
      available[event.shard] = (available[event.shard] ?? 0) - CALL_WORST_MICROS;
      write(shard, event.at, bytes(event.id));
    } else {
      available[event.shard] = (available[event.shard] ?? 0) + CALL_WORST_MICROS - CALL_ACTUAL_MICROS;
      write(shard, event.at, -bytes(event.id));
    }
  }
  const seconds = options.durationMs / 1000;
  const all = design === 'sharded' ? [...items, pool] : items;
  const busiest = all.reduce((a, b) => (b.writes > a.writes ? b : a));
  return {
    workers: options.workers,
    design,
    writesPerSecond: busiest.writes / seconds,
    peakUnitsPerSecond: Math.max(0, ...all.flatMap((i) => [...i.unitsBySecond.values()])),
    peakItemBytes: Math.max(...all.map((i) => i.peak)),
    poolWritesPerSecond: pool.writes / seconds,
  };
}
