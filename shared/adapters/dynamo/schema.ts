/**
 * The state table's key design, in one module that the adapter and the CDK construct
 * both import (one table, single-item writes only):
 *   run     pk RUN#{runId}                 sk RUN            the budget, its pool, what each shard was given and gave back
 *   shard   pk RUN#{runId}#L{k}            sk LEDGER         one budget shard: credit, reserved, spent, open reservations
 *   job     pk RUN#{runId}#J{shard}        sk JOB#{jobKey}   lease, fencing token, outcome
 *   runs    pk RUNS                        sk {createdAt}#{runId}   index of runs, newest last
 *   slot    pk SLOTS                       sk {workerId}     worker identity lease (worker-01..N)
 * Jobs are spread over JOB_SHARDS partitions so that one run's writes are not bound
 * to one partition's throughput; listing a run queries each shard. The budget ledger is
 * spread the same way over LEDGER_SHARDS items (shared/adapters/dynamo/run-ledger.ts).
 */
export const PARTITION_KEY = 'pk';
export const SORT_KEY = 'sk';
export const JOB_SHARDS = 16;
/** Epoch seconds after which DynamoDB's TTL may delete an item. */
export const TTL_ATTRIBUTE = 'expiresAt';

export const RUN_INDEX_PK = 'RUNS';
export const SLOTS_PK = 'SLOTS';

const runPk = (runId: string) => `RUN#${runId}`;

export const jobShardPk = (runId: string, shard: number) => `RUN#${runId}#J${shard}`;

function jobPk(runId: string, jobKey: string): string {
  let h = 0;
  for (let i = 0; i < jobKey.length; i++) h = (Math.imul(h, 31) + jobKey.charCodeAt(i)) >>> 0;
  return jobShardPk(runId, h % JOB_SHARDS);
}

export const jobItemKey = (runId: string, jobKey: string) => ({
  pk: jobPk(runId, jobKey),
  sk: `JOB#${jobKey}`,
});
export const runItemKey = (runId: string) => ({ pk: runPk(runId), sk: 'RUN' });
export const ledgerShardKey = (runId: string, shard: number) => ({
  pk: `RUN#${runId}#L${shard}`,
  sk: 'LEDGER',
});
/**
 * Budget shards per run. At 1,000 workers each making a model call every 5 s (400 ledger
 * writes a second), 32 shards take about 13 writes a second each (README, "The ledger").
 */
export const LEDGER_SHARDS = 32;
/**
 * Open reservations one shard holds at most: with ids of at most RESERVATION_ID_MAX_BYTES,
 * a shard item stays under 4 KB (DynamoDB bills a write by the KB of its item).
 */
export const MAX_OPEN_PER_SHARD = 64;
/** The longest reservation id a shard accepts (shared/domain/ledger.ts makes them shorter). */
export const RESERVATION_ID_MAX_BYTES = 52;
export const slotItemKey = (workerId: string) => ({ pk: SLOTS_PK, sk: workerId });
