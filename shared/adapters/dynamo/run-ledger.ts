import { BatchGetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { FanoutError } from '../../domain/errors.js';
import type { LedgerEntry, ReserveAnswer, RunLedger, RunRecord } from '../../ports/state.js';
import {
  LEDGER_SHARDS,
  ledgerShardKey,
  MAX_OPEN_PER_SHARD,
  RESERVATION_ID_MAX_BYTES,
  RUN_INDEX_PK,
  runItemKey,
  TTL_ATTRIBUTE,
} from './schema.js';
import { DynamoTable } from './table.js';

/** The run item as the ledger reads it. */
export interface PoolItem {
  readonly runId: string;
  readonly budgetMicros: number;
  /** Credit no shard holds yet. */
  readonly poolMicros: number;
  readonly shards: number;
  /** What the pool gave shard k (`g{k}`) and took back from it (`r{k}`), in total. */
  readonly granted: readonly number[];
  readonly returned: readonly number[];
  readonly jobCount: number;
  readonly createdAt: number;
  readonly repoBudgetMicros?: number;
  readonly version: number;
}

/** One budget shard: each field only moves in a conditional write of this one item. */
export interface ShardItem {
  readonly shard: number;
  readonly availableMicros: number;
  readonly reservedMicros: number;
  readonly spentMicros: number;
  readonly abandonedMicros: number;
  /** What this shard received from the pool and gave back to it, in total. */
  readonly grantedMicros: number;
  readonly returnedMicros: number;
  readonly open: ReadonlySet<string>;
  readonly version: number;
  readonly bytes: number;
}

/** All the ledger's items of one run, and whether they were read as one instant's. */
export interface LedgerItems {
  readonly pool: PoolItem;
  readonly shards: readonly ShardItem[];
  readonly consistent: boolean;
}

/** Credit the pool gave away (or a shard gave back) that has not reached the other side yet. */
export function inTransit(items: LedgerItems): number {
  let micros = 0;
  const byShard = new Map(items.shards.map((shard) => [shard.shard, shard]));
  for (let k = 0; k < items.pool.shards; k++) {
    // A shard the pool gave credit to may not exist yet: its first move is on its way.
    const shard = byShard.get(k);
    micros += (items.pool.granted[k] ?? 0) - (shard?.grantedMicros ?? 0);
    micros += (shard?.returnedMicros ?? 0) - (items.pool.returned[k] ?? 0);
  }
  return micros;
}

/** What the shards hold together: what getRun reports, and the sums the checks use. */
export function ledgerTotals(shards: readonly ShardItem[]) {
  const totals = { spentMicros: 0, abandonedMicros: 0, reservedMicros: 0, openReservations: 0 };
  for (const shard of shards) {
    totals.spentMicros += shard.spentMicros;
    totals.abandonedMicros += shard.abandonedMicros;
    totals.reservedMicros += shard.reservedMicros;
    totals.openReservations += shard.open.size;
  }
  return totals;
}

/**
 * The ledger's rules, as broken in a read of its items (empty when none is): each item's
 * own rules always, and, when the read is one instant's, those between items (the order of
 * a move's two writes) and the budget's (spent + reserved within it, and pool + shards +
 * credit in transit equal to it).
 */
export function ledgerViolations(items: LedgerItems, budgetMicros: number): string[] {
  const { pool, shards } = items;
  const broken: string[] = [];
  if (pool.poolMicros < 0) broken.push(`pool below zero: ${pool.poolMicros}`);
  let held = 0;
  for (const s of shards) {
    const given = s.grantedMicros - s.returnedMicros;
    const holds = s.availableMicros + s.reservedMicros + s.spentMicros + s.abandonedMicros;
    if (s.availableMicros < 0) broken.push(`shard ${s.shard} available below zero`);
    if (holds !== given) broken.push(`shard ${s.shard} holds ${holds}, was given ${given}`);
    if (s.open.size > MAX_OPEN_PER_SHARD)
      broken.push(`shard ${s.shard} holds ${s.open.size} open reservations`);
    held += given;
  }
  // The rest compares items with each other: only a read of one instant can say.
  if (!items.consistent) return broken;
  for (const s of shards) {
    // A move's second write follows its first: a shard never has more than the pool says it gave.
    if (s.grantedMicros > (pool.granted[s.shard] ?? 0))
      broken.push(`shard ${s.shard} got more than it was given`);
    if (s.returnedMicros < (pool.returned[s.shard] ?? 0))
      broken.push(`pool got back more than shard ${s.shard} gave`);
  }
  const { spentMicros, reservedMicros, abandonedMicros } = ledgerTotals(shards);
  const committed = spentMicros + reservedMicros + abandonedMicros;
  if (committed > budgetMicros) broken.push(`spent + reserved ${committed} over the budget ${budgetMicros}`);
  if (pool.poolMicros + held + inTransit(items) !== budgetMicros) {
    broken.push(
      `pool ${pool.poolMicros} + shards ${held} + in transit ${inTransit(items)} is not the budget`,
    );
  }
  return broken;
}

/** FNV-1a over the id: the shard a reservation is tried on first. */
export function homeShard(id: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return h % shards;
}

const EMPTY_SHARD = (shard: number): ShardItem => ({
  shard,
  availableMicros: 0,
  reservedMicros: 0,
  spentMicros: 0,
  abandonedMicros: 0,
  grantedMicros: 0,
  returnedMicros: 0,
  open: new Set(),
  version: 0,
  bytes: 0,
});

/** Rounds of refill and retry one reservation makes before it answers 'busy'. */
const MAX_ROUNDS = 8;

/**
 * Runs and the budget ledger, sharded so that no item grows with the fleet or takes more
 * than a share of its writes (README, "The ledger"). The run item holds the budget
 * and a pool of credit; the pool hands credit to LEDGER_SHARDS shard items in chunks, and
 * a reservation is one conditional write on one shard that holds enough credit. Every
 * write is one item's, so the per-item rules hold at every instant:
 *   pool >= 0;  shard available >= 0;  at most MAX_OPEN_PER_SHARD open reservations;
 *   shard available + reserved + spent + abandoned = shard granted - shard returned.
 * Credit moves in two writes, the giving side first (conditioned only on having it), which
 * adds to its running total of what it gave (`g{k}` on the run, `returnedMicros` on the
 * shard); the second raises the receiver's running total to the giver's, conditioned on the
 * value it read, so it applies once whoever makes it, and anyone can finish a move whose
 * mover died. Between the two writes the credit is in neither place: it can be lost to the
 * budget for a moment, never counted twice. Hence spent + reserved <= budget, with no transaction.
 */
export class DynamoRunLedger extends DynamoTable implements RunLedger {
  /** A run's shard count never changes: read once per run. */
  private readonly shardCounts = new Map<string, number>();

  async createRun(run: {
    runId: string;
    budgetMicros: number;
    createdAt: number;
    ledgerShards?: number;
    repoBudgetMicros?: number;
    listed?: boolean;
  }): Promise<'created' | 'exists'> {
    const created = await this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...runItemKey(run.runId),
            runId: run.runId,
            budgetMicros: run.budgetMicros,
            poolMicros: run.budgetMicros,
            ledgerShards: run.ledgerShards ?? LEDGER_SHARDS,
            jobCount: 0,
            createdAt: run.createdAt,
            ...(run.repoBudgetMicros !== undefined ? { repoBudgetMicros: run.repoBudgetMicros } : {}),
            version: 0,
            [TTL_ATTRIBUTE]: this.ttl(run.createdAt),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (created && run.listed !== false) {
      // A small index so that `fanout status` can find the newest run without a scan.
      await this.call(() =>
        this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: {
              pk: RUN_INDEX_PK,
              sk: `${String(run.createdAt).padStart(15, '0')}#${run.runId}`,
              runId: run.runId,
              [TTL_ATTRIBUTE]: this.ttl(run.createdAt),
            },
          }),
        ),
      );
    }
    return created ? 'created' : 'exists';
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const items = await this.readLedger(runId);
    if (!items) return undefined;
    const { pool } = items;
    const totals = ledgerTotals(items.shards);
    const { spentMicros, abandonedMicros, reservedMicros } = totals;
    return {
      runId: pool.runId,
      budgetMicros: pool.budgetMicros,
      ...totals,
      availableMicros: pool.budgetMicros - spentMicros - abandonedMicros - reservedMicros,
      jobCount: pool.jobCount,
      createdAt: pool.createdAt,
      ...(pool.repoBudgetMicros !== undefined ? { repoBudgetMicros: pool.repoBudgetMicros } : {}),
      consistent: items.consistent,
    };
  }

  async listRuns(limit: number): Promise<RunRecord[]> {
    const { Items } = await this.call(() =>
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': RUN_INDEX_PK },
          ScanIndexForward: false,
          Limit: limit,
        }),
      ),
    );
    const runs = await Promise.all((Items ?? []).map((item) => this.getRun(item.runId as string)));
    return runs.filter((run): run is RunRecord => run !== undefined);
  }

  async addJobCount(runId: string, count: number): Promise<void> {
    await this.call(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runItemKey(runId),
          UpdateExpression: 'SET jobCount = jobCount + :n, version = version + :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':n': count, ':one': 1 },
        }),
      ),
    );
  }

  async reserve(runId: string, reservationId: string, amountMicros: number): Promise<ReserveAnswer> {
    if (Buffer.byteLength(reservationId) > RESERVATION_ID_MAX_BYTES) {
      throw new FanoutError(
        'INVALID_MESSAGE',
        `reservation id "${reservationId}" is longer than ${RESERVATION_ID_MAX_BYTES} bytes: a shard's size bound counts on it`,
      );
    }
    const shards = await this.shardCount(runId);
    let shard = homeShard(reservationId, shards);
    let full = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (await this.take(runId, shard, reservationId, amountMicros)) return { kind: 'reserved', shard };
      const found = (await this.readShard(runId, shard)) ?? EMPTY_SHARD(shard);
      if (found.open.has(reservationId)) return { kind: 'duplicate', shard };
      if (found.open.size >= MAX_OPEN_PER_SHARD) {
        // This shard holds its most: the next one may not (the bound on item size).
        if (++full >= shards) return { kind: 'busy' };
        shard = (shard + 1) % shards;
        round--;
        continue;
      }
      if (found.version > 0 && found.availableMicros >= amountMicros) continue; // its credit came back meanwhile
      const refilled = await this.refill(runId, found, amountMicros);
      if (refilled === 'moved') continue;
      if ('elsewhere' in refilled) shard = refilled.elsewhere;
      else return { kind: 'over-budget', unspentMicros: refilled.unspentMicros };
    }
    return { kind: 'busy' };
  }

  async settle(
    runId: string,
    entry: LedgerEntry,
    reservedMicros: number,
    actualMicros: number,
    kind: 'spent' | 'abandoned' = 'spent',
  ) {
    // The reservation id leaves the open set in the same write that counts the spend, so a
    // retried settle finds it gone and counts nothing (pitfall 6).
    const ok = await this.update(
      ledgerShardKey(runId, entry.shard),
      'SET availableMicros = availableMicros + :back, reservedMicros = reservedMicros - :r, ' +
        `${kind}Micros = ${kind}Micros + :s, version = version + :one DELETE #open :ids`,
      'contains(#open, :id)',
      {
        ':back': reservedMicros - actualMicros,
        ':r': reservedMicros,
        ':s': actualMicros,
        ':id': entry.id,
        ':ids': new Set([entry.id]),
        ':one': 1,
      },
      { '#open': 'open' },
    );
    return ok ? ('settled' as const) : ('already-settled' as const);
  }

  async openReservations(runId: string): Promise<LedgerEntry[]> {
    // Not a snapshot: a reservation opened or closed meanwhile is no concern of a takeover's.
    const items = await this.readAll(runId);
    return (items?.shards ?? []).flatMap((shard) =>
      [...shard.open].map((id) => ({ id, shard: shard.shard })),
    );
  }

  /**
   * The run item and every shard. Read twice over until no item changed between its two
   * reads: then every item held its values at one instant (the end of the first read), and
   * sums over them are that instant's. Gives up after a few tries and says so.
   */
  async readLedger(runId: string, tries = 4): Promise<LedgerItems | undefined> {
    let before = await this.readAll(runId);
    if (!before) return undefined;
    for (let attempt = 1; attempt < tries; attempt++) {
      const after = await this.readAll(runId);
      if (!after) return undefined;
      const same =
        after.pool.version === before.pool.version &&
        after.shards.length === before.shards.length &&
        after.shards.every((shard, i) => shard.version === before?.shards[i]?.version);
      if (same) return { ...before, consistent: true };
      before = after;
    }
    return { ...before, consistent: false };
  }

  private async readAll(runId: string): Promise<Omit<LedgerItems, 'consistent'> | undefined> {
    const pool = await this.readPool(runId);
    if (!pool) return undefined;
    const keys = Array.from({ length: pool.shards }, (_, k) => ledgerShardKey(runId, k));
    const found = new Map<number, ShardItem>();
    for (let start = 0; start < keys.length; start += 100) {
      let pending: Record<string, unknown>[] = keys.slice(start, start + 100);
      while (pending.length > 0) {
        const answer = await this.call(() =>
          this.doc.send(
            new BatchGetCommand({ RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } } }),
          ),
        );
        for (const item of answer.Responses?.[this.table] ?? []) {
          const shard = toShard(item);
          found.set(shard.shard, shard);
        }
        pending = (answer.UnprocessedKeys?.[this.table]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    }
    const shards = [...found.values()].sort((a, b) => a.shard - b.shard);
    return { pool, shards };
  }

  private async readPool(runId: string): Promise<PoolItem | undefined> {
    const { Item } = await this.get(runItemKey(runId));
    if (!Item) return undefined;
    if (Item.poolMicros === undefined) {
      throw new FanoutError(
        'STATE_DAMAGED',
        `run "${runId}" was recorded by an older fanout whose budget ledger was one item; finish it with that version or start a new run`,
      );
    }
    const shards = Item.ledgerShards as number;
    const counter = (prefix: string) =>
      Array.from({ length: shards }, (_, k) => (Item[`${prefix}${k}`] as number | undefined) ?? 0);
    this.shardCounts.set(runId, shards);
    return {
      runId: Item.runId,
      budgetMicros: Item.budgetMicros,
      poolMicros: Item.poolMicros,
      shards,
      granted: counter('g'),
      returned: counter('r'),
      jobCount: Item.jobCount,
      createdAt: Item.createdAt,
      ...(Item.repoBudgetMicros !== undefined ? { repoBudgetMicros: Item.repoBudgetMicros as number } : {}),
      version: Item.version ?? 0,
    };
  }

  private async readShard(runId: string, shard: number): Promise<ShardItem | undefined> {
    const { Item } = await this.get(ledgerShardKey(runId, shard));
    return Item ? toShard(Item) : undefined;
  }

  private async shardCount(runId: string): Promise<number> {
    return this.shardCounts.get(runId) ?? (await this.requirePool(runId)).shards;
  }

  /** The run item, which a reservation cannot do without. */
  private async requirePool(runId: string): Promise<PoolItem> {
    const pool = await this.readPool(runId);
    if (!pool) {
      throw new FanoutError(
        'INVALID_MESSAGE',
        `run "${runId}" does not exist in the state table; send the job again`,
      );
    }
    return pool;
  }

  /** The reservation itself: one write on one shard, granted while the shard's credit covers it. */
  private take(runId: string, shard: number, id: string, amountMicros: number): Promise<boolean> {
    return this.update(
      ledgerShardKey(runId, shard),
      'SET availableMicros = availableMicros - :a, reservedMicros = reservedMicros + :a, version = version + :one ADD #open :ids',
      'availableMicros >= :a AND NOT contains(#open, :id) AND (attribute_not_exists(#open) OR size(#open) < :max)',
      { ':a': amountMicros, ':id': id, ':ids': new Set([id]), ':max': MAX_OPEN_PER_SHARD, ':one': 1 },
      { '#open': 'open' },
    );
  }

  /**
   * Brings the shard's credit up to `amountMicros` at least: from the pool, in a chunk of a
   * share of what it holds (fewer moves while the budget is large, exact ones near its end).
   * When the pool cannot cover it: another shard that holds enough spare credit alone, or
   * else the spare credit of every shard gathered back into the pool and tried once more.
   * 'moved' when credit moved, so the reservation should be tried again; else what is not
   * yet spent, as the gathering read it.
   */
  private async refill(
    runId: string,
    shard: ShardItem,
    amountMicros: number,
  ): Promise<'moved' | { elsewhere: number } | { unspentMicros: number }> {
    const k = shard.shard;
    let unspent: number | undefined;
    for (;;) {
      const pool = await this.requirePool(runId);
      const given = pool.granted[k] ?? 0;
      if (given > shard.grantedMicros) {
        // Credit the pool gave this shard that has not reached it (a mover died, or is on its way).
        await this.catchUpShard(runId, this.ttl(pool.createdAt), k, given);
        return 'moved';
      }
      const needMicros = amountMicros - shard.availableMicros;
      if (pool.poolMicros >= needMicros) {
        const chunk = Math.min(
          pool.poolMicros,
          Math.max(needMicros, Math.floor(pool.poolMicros / (4 * pool.shards))),
        );
        // Not conditioned on what the shard was given before: two movers, or a retried write,
        // each move a chunk, and the shard catches up with all of it. Only the pool's floor holds.
        const moved = await this.updateReturning(
          runItemKey(runId),
          'SET poolMicros = poolMicros - :c, #g = if_not_exists(#g, :zero) + :c, version = version + :one',
          'poolMicros >= :c',
          { ':c': chunk, ':zero': 0, ':one': 1 },
          { '#g': `g${k}` },
        );
        if (moved) await this.catchUpShard(runId, this.ttl(pool.createdAt), k, moved[`g${k}`] as number);
        return 'moved';
      }
      if (unspent !== undefined) return { unspentMicros: unspent };
      const gathered = await this.gather(runId, k, amountMicros);
      if ('elsewhere' in gathered) return gathered;
      unspent = gathered.unspentMicros;
      shard = (await this.readShard(runId, k)) ?? EMPTY_SHARD(k);
    }
  }

  /**
   * The second half of every move to shard k: raises the shard's `granted` to at least `to`
   * (what the pool says it gave), adding the difference to its credit. Each write is
   * conditioned on the `granted` it read, so the difference is added once, whoever writes it.
   */
  private async catchUpShard(runId: string, ttl: number, k: number, to: number): Promise<void> {
    for (let tries = 0; tries < MAX_ROUNDS; tries++) {
      const found = await this.readShard(runId, k);
      const from = found?.grantedMicros ?? 0;
      if (found && from >= to) return;
      const applied = await this.update(
        ledgerShardKey(runId, k),
        'SET grantedMicros = :to, availableMicros = if_not_exists(availableMicros, :zero) + :d, ' +
          'reservedMicros = if_not_exists(reservedMicros, :zero), spentMicros = if_not_exists(spentMicros, :zero), ' +
          'abandonedMicros = if_not_exists(abandonedMicros, :zero), returnedMicros = if_not_exists(returnedMicros, :zero), ' +
          `version = if_not_exists(version, :zero) + :one, ${TTL_ATTRIBUTE} = :ttl`,
        runningTotalIs('grantedMicros', from),
        {
          ':to': to,
          ':d': to - from,
          ':from': from,
          ':zero': 0,
          ':one': 1,
          ':ttl': ttl,
        },
      );
      if (applied) return;
    }
  }

  /** The second half of every move from shard k back to the pool: the same, the other way. */
  private async catchUpPool(runId: string, k: number, to: number): Promise<void> {
    for (let tries = 0; tries < MAX_ROUNDS; tries++) {
      const from = (await this.readPool(runId))?.returned[k] ?? 0;
      if (from >= to) return;
      const applied = await this.update(
        runItemKey(runId),
        'SET poolMicros = poolMicros + :d, #r = :to, version = version + :one',
        runningTotalIs('#r', from),
        { ':d': to - from, ':to': to, ':from': from, ':one': 1 },
        { '#r': `r${k}` },
      );
      if (applied) return;
    }
  }

  /**
   * Near the budget's end: finishes every half-done move and takes the spare credit of
   * every shard but `except` back into the pool, so that one reservation can use credit
   * that is spread thin. Credit a shard's holders still need comes back to them the same way.
   * Returns budget - spent - abandoned as it read them; or, when another shard alone holds
   * enough spare credit for the reservation, that shard, and gathers nothing: many workers
   * near the budget's end then take spare credit where it lies instead of moving it about.
   */
  private async gather(
    runId: string,
    except: number,
    amountMicros: number,
  ): Promise<{ elsewhere: number } | { unspentMicros: number }> {
    const items = await this.readAll(runId);
    if (!items) return { unspentMicros: 0 };
    const { pool } = items;
    const roomy = items.shards.filter(
      (shard) =>
        shard.shard !== except &&
        shard.availableMicros >= amountMicros &&
        shard.open.size < MAX_OPEN_PER_SHARD,
    );
    if (roomy.length > 0) {
      return { elsewhere: (roomy[Math.floor(Math.random() * roomy.length)] as ShardItem).shard };
    }
    const { spentMicros, abandonedMicros } = ledgerTotals(items.shards);
    const unspent = pool.budgetMicros - spentMicros - abandonedMicros;
    for (const shard of items.shards) {
      const k = shard.shard;
      if ((pool.granted[k] ?? 0) > shard.grantedMicros)
        await this.catchUpShard(runId, this.ttl(pool.createdAt), k, pool.granted[k] ?? 0);
      if (shard.returnedMicros > (pool.returned[k] ?? 0))
        await this.catchUpPool(runId, k, shard.returnedMicros);
      if (k === except) continue;
      const spare = (await this.readShard(runId, k))?.availableMicros ?? 0;
      if (spare <= 0) continue;
      const gave = await this.updateReturning(
        ledgerShardKey(runId, k),
        'SET availableMicros = availableMicros - :x, returnedMicros = returnedMicros + :x, version = version + :one',
        'availableMicros >= :x',
        { ':x': spare, ':one': 1 },
      );
      if (gave) await this.catchUpPool(runId, k, gave.returnedMicros as number);
    }
    return { unspentMicros: unspent };
  }

  /** One conditional update: the item's updated attributes when applied, undefined when not. */
  private async updateReturning(
    key: Record<string, string>,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    names?: Record<string, string>,
  ): Promise<Record<string, unknown> | undefined> {
    let attributes: Record<string, unknown> | undefined;
    const applied = await this.conditional(async () => {
      const answer = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
          ReturnValues: 'UPDATED_NEW',
          ...(names ? { ExpressionAttributeNames: names } : {}),
        }),
      );
      attributes = answer.Attributes ?? {};
    });
    return applied ? attributes : undefined;
  }

  /** One conditional update: true when applied. */
  private async update(
    key: Record<string, string>,
    update: string,
    condition: string,
    values: Record<string, unknown>,
    names?: Record<string, string>,
  ): Promise<boolean> {
    return (await this.updateReturning(key, update, condition, values, names)) !== undefined;
  }
}

/** A condition that a running total is still `from` (:from); a total of 0 may not exist yet. */
function runningTotalIs(path: string, from: number): string {
  return from === 0 ? `(attribute_not_exists(${path}) OR ${path} = :from)` : `${path} = :from`;
}

function toShard(item: Record<string, unknown>): ShardItem {
  const open = (item.open as Set<string> | undefined) ?? new Set<string>();
  return {
    shard: Number(String(item.pk).slice(String(item.pk).lastIndexOf('#L') + 2)),
    availableMicros: item.availableMicros as number,
    reservedMicros: item.reservedMicros as number,
    spentMicros: item.spentMicros as number,
    abandonedMicros: item.abandonedMicros as number,
    grantedMicros: item.grantedMicros as number,
    returnedMicros: item.returnedMicros as number,
    open,
    version: item.version as number,
    bytes: itemBytes(item),
  };
}

/** An item's size by DynamoDB's rule: attribute names plus values (strings in UTF-8, numbers about 1 byte per 2 digits). */
export function itemBytes(item: Record<string, unknown>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name);
    if (typeof value === 'string') bytes += Buffer.byteLength(value);
    else if (typeof value === 'number')
      bytes += Math.ceil(String(Math.abs(value)).replace('.', '').length / 2) + 1;
    else if (value instanceof Set) for (const element of value) bytes += Buffer.byteLength(String(element));
  }
  return bytes;
}
