/**
 * The state table's key design, in one module that the adapter and the CDK construct
 * both import (one table, single-item writes only):
 *   run     pk RUN#{runId}                 sk RUN            budget ledger: one item, conditional updates
 *   job     pk RUN#{runId}#J{shard}        sk JOB#{jobKey}   lease, fencing token, outcome
 *   runs    pk RUNS                        sk {createdAt}#{runId}   index of runs, newest last
 *   slot    pk SLOTS                       sk {workerId}     worker identity lease (worker-01..N)
 * Jobs are spread over JOB_SHARDS partitions so that one run's writes are not bound
 * to one partition's throughput; listing a run queries each shard.
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
export const slotItemKey = (workerId: string) => ({ pk: SLOTS_PK, sk: workerId });
