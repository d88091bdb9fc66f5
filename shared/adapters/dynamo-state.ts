import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandOutput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { type ErrorCode, FanoutError } from '../domain/errors.js';
import { slotName } from '../domain/job.js';
import type {
  FinalStatus,
  JobOutcome,
  JobRecord,
  JobStatus,
  Lease,
  LeaseAnswer,
  RunRecord,
  StatePort,
  WorkerSlot,
} from '../ports/state.js';

/**
 * Key design (one table, single-item writes only):
 *   run     pk RUN#{runId}                 sk RUN            budget ledger: one item, conditional updates
 *   job     pk RUN#{runId}#J{shard}        sk JOB#{jobKey}   lease, fencing token, outcome
 *   runs    pk RUNS                        sk {createdAt}#{runId}   index of runs, newest last
 *   slot    pk SLOTS                       sk {workerId}     worker identity lease (worker-01..N)
 * Jobs are spread over JOB_SHARDS partitions so that one run's writes are not bound
 * to one partition's throughput; listing a run queries each shard.
 */
export const JOB_SHARDS = 16;
export const TTL_ATTRIBUTE = 'expiresAt';

const runPk = (runId: string) => `RUN#${runId}`;
function jobPk(runId: string, jobKey: string): string {
  let h = 0;
  for (let i = 0; i < jobKey.length; i++) h = (Math.imul(h, 31) + jobKey.charCodeAt(i)) >>> 0;
  return `RUN#${runId}#J${h % JOB_SHARDS}`;
}
const jobItemKey = (runId: string, jobKey: string) => ({ pk: jobPk(runId, jobKey), sk: `JOB#${jobKey}` });
const runItemKey = (runId: string) => ({ pk: runPk(runId), sk: 'RUN' });
const RUN_INDEX_PK = 'RUNS';
const SLOTS_PK = 'SLOTS';

export interface DynamoStateOptions {
  readonly tableName: string;
  readonly client: DynamoDBClient;
  /** Days after which DynamoDB's TTL may delete a record: the stack's workspace retention. @default 30 */
  readonly retentionDays?: number;
}

function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as Error)?.name === 'ConditionalCheckFailedException'
  );
}

function isMissingTable(error: unknown): boolean {
  return error instanceof ResourceNotFoundException || (error as Error)?.name === 'ResourceNotFoundException';
}

export class DynamoState implements StatePort {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly ttlSeconds: number;

  constructor(options: DynamoStateOptions) {
    this.table = options.tableName;
    this.ttlSeconds = (options.retentionDays ?? 30) * 24 * 3600;
    this.doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  /** Runs one call, turning a missing table into an error that says what to do. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isMissingTable(error)) {
        throw new FanoutError(
          'TABLE_MISSING',
          `state table "${this.table}" does not exist: deploy the stack (npx cdk deploy) or check FANOUT_TABLE_NAME`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Conditional write: true when applied, false when its condition did not hold. */
  private async conditional(fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.call(fn);
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  private get(key: Record<string, string>) {
    return this.call(() =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true })),
    );
  }

  private ttl(now: number): number {
    return Math.floor(now / 1000) + this.ttlSeconds;
  }

  async createRun(run: {
    runId: string;
    budgetMicros: number;
    createdAt: number;
  }): Promise<'created' | 'exists'> {
    const created = await this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...runItemKey(run.runId),
            runId: run.runId,
            budgetMicros: run.budgetMicros,
            availableMicros: run.budgetMicros,
            spentMicros: 0,
            abandonedMicros: 0,
            reservedMicros: 0,
            jobCount: 0,
            createdAt: run.createdAt,
            [TTL_ATTRIBUTE]: this.ttl(run.createdAt),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (created) {
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
    const { Item } = await this.get(runItemKey(runId));
    if (!Item) return undefined;
    return {
      runId: Item.runId,
      budgetMicros: Item.budgetMicros,
      spentMicros: Item.spentMicros,
      abandonedMicros: Item.abandonedMicros,
      reservedMicros: Item.reservedMicros,
      outstanding: [...((Item.outstanding as Set<string> | undefined) ?? [])],
      availableMicros: Item.availableMicros,
      jobCount: Item.jobCount,
      createdAt: Item.createdAt,
    };
  }

  async registerJob(job: { runId: string; jobKey: string; title: string; registeredAt: number }) {
    const created = await this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...jobItemKey(job.runId, job.jobKey),
            runId: job.runId,
            jobKey: job.jobKey,
            title: job.title,
            status: 'PENDING' satisfies JobStatus,
            fence: 0,
            attempts: 0,
            attemptCosts: {},
            registeredAt: job.registeredAt,
            [TTL_ATTRIBUTE]: this.ttl(job.registeredAt),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    );
    if (created) return 'created' as const;
    const { Item } = await this.get(jobItemKey(job.runId, job.jobKey));
    return Item?.enqueuedAt === undefined && Item?.status === 'PENDING'
      ? ('unsent' as const)
      : ('exists' as const);
  }

  async markEnqueued(runId: string, jobKey: string, now: number): Promise<void> {
    await this.call(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobItemKey(runId, jobKey),
          UpdateExpression: 'SET enqueuedAt = if_not_exists(enqueuedAt, :now)',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':now': now },
        }),
      ),
    );
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
          UpdateExpression: 'SET jobCount = jobCount + :n',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':n': count },
        }),
      ),
    );
  }

  async acquireLease(
    runId: string,
    jobKey: string,
    holder: { owner: string; worker: string },
    now: number,
    leaseMs: number,
  ): Promise<LeaseAnswer> {
    try {
      const { Attributes } = await this.call(() =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.table,
            Key: jobItemKey(runId, jobKey),
            // A job is free when new, PENDING, or RUNNING under a lease that has expired.
            ConditionExpression:
              'attribute_not_exists(pk) OR #s = :pending OR (#s = :running AND leaseUntil < :now)',
            UpdateExpression:
              'SET #s = :running, leaseOwner = :owner, worker = :worker, leaseUntil = :until, startedAt = :now, ' +
              'heartbeatAt = :now, firstStartedAt = if_not_exists(firstStartedAt, :now), ' +
              'fence = if_not_exists(fence, :zero) + :one, attempts = if_not_exists(attempts, :zero) + :one, ' +
              'runId = :runId, jobKey = :jobKey, attemptCosts = if_not_exists(attemptCosts, :noCosts), ' +
              `title = if_not_exists(title, :jobKey), ${TTL_ATTRIBUTE} = if_not_exists(${TTL_ATTRIBUTE}, :ttl)`,
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: {
              ':pending': 'PENDING',
              ':running': 'RUNNING',
              ':now': now,
              ':owner': holder.owner,
              ':worker': holder.worker,
              ':until': now + leaseMs,
              ':zero': 0,
              ':one': 1,
              ':runId': runId,
              ':jobKey': jobKey,
              ':ttl': this.ttl(now),
              ':noCosts': {},
            },
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
      );
      return {
        kind: 'acquired',
        fence: Attributes?.fence,
        attempts: Attributes?.attempts,
        firstStartedAt: Attributes?.firstStartedAt,
      };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // The condition failed: read why (dynalite lacks ReturnValuesOnConditionCheckFailure).
    const { Item } = await this.get(jobItemKey(runId, jobKey));
    if (Item?.status === 'RUNNING' && Item.leaseOwner === holder.owner && Item.startedAt === now) {
      // Our own write: it was applied, its answer lost, and the SDK's retry found the job taken (by us).
      return {
        kind: 'acquired',
        fence: Item.fence,
        attempts: Item.attempts,
        firstStartedAt: Item.firstStartedAt,
      };
    }
    if (Item?.status === 'RUNNING') return { kind: 'held', until: Item.leaseUntil, owner: Item.leaseOwner };
    if (Item?.status === 'DONE' || Item?.status === 'FAILED' || Item?.status === 'SKIPPED') {
      return { kind: 'finished', status: Item.status as FinalStatus };
    }
    // Released between our write and our read: report it held for an instant; the retry takes it.
    return { kind: 'held', until: now, owner: 'unknown' };
  }

  /**
   * An update of a job that holds only while `lease` is the job's current lease (its
   * fencing token and owner): true when applied, false when the lease was lost.
   */
  private fencedUpdate(
    lease: Lease,
    updateExpression: string,
    values: Record<string, unknown>,
    names: Record<string, string> = {},
  ): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobItemKey(lease.runId, lease.jobKey),
          UpdateExpression: updateExpression,
          ConditionExpression: '#s = :running AND fence = :fence AND leaseOwner = :owner',
          ExpressionAttributeNames: { '#s': 'status', ...names },
          ExpressionAttributeValues: {
            ':running': 'RUNNING',
            ':fence': lease.fence,
            ':owner': lease.owner,
            ...values,
          },
        }),
      ),
    );
  }

  async renewLease(lease: Lease, now: number, leaseMs: number): Promise<'renewed' | 'lost'> {
    const ok = await this.fencedUpdate(lease, 'SET leaseUntil = :until, heartbeatAt = :now', {
      ':until': now + leaseMs,
      ':now': now,
    });
    return ok ? 'renewed' : 'lost';
  }

  async releaseLease(
    lease: Lease,
    error?: { code: ErrorCode; message: string },
    costMicros = 0,
  ): Promise<'released' | 'lost'> {
    const ok = await this.fencedUpdate(
      lease,
      error
        ? 'SET #s = :pending, errorCode = :code, errorMessage = :msg, attemptCosts.#attempt = :cost REMOVE leaseOwner, leaseUntil'
        : 'SET #s = :pending, attemptCosts.#attempt = :cost REMOVE leaseOwner, leaseUntil',
      {
        ':pending': 'PENDING',
        ':cost': costMicros,
        ...(error ? { ':code': error.code, ':msg': error.message } : {}),
      },
      { '#attempt': lease.owner },
    );
    return ok ? 'released' : 'lost';
  }

  async recordAttemptCost(lease: Lease, costMicros: number): Promise<void> {
    // Not fenced: what an attempt spent is a fact about that attempt, whoever holds the job
    // now; keyed by the attempt, so a retried write counts once.
    await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobItemKey(lease.runId, lease.jobKey),
          UpdateExpression: 'SET attemptCosts.#attempt = :cost',
          ConditionExpression: 'attribute_exists(attemptCosts)',
          ExpressionAttributeNames: { '#attempt': lease.owner },
          ExpressionAttributeValues: { ':cost': costMicros },
        }),
      ),
    );
  }

  async reopenJob(runId: string, jobKey: string): Promise<'reopened' | 'not-failed'> {
    const ok = await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobItemKey(runId, jobKey),
          UpdateExpression: 'SET #s = :pending REMOVE errorCode, errorMessage, finishedAt',
          ConditionExpression: '#s = :failed',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':pending': 'PENDING', ':failed': 'FAILED' },
        }),
      ),
    );
    return ok ? 'reopened' : 'not-failed';
  }

  async finishJob(lease: Lease, outcome: JobOutcome, now: number): Promise<'recorded' | 'lost'> {
    const sets = [
      '#s = :status',
      'worker = :worker',
      'durationMs = :duration',
      'attemptCosts.#attempt = :cost',
      'finishedAt = :now',
    ];
    const values: Record<string, unknown> = {
      ':status': outcome.status,
      ':worker': outcome.worker,
      ':duration': outcome.durationMs,
      ':cost': outcome.costMicros,
      ':now': now,
    };
    let remove = ' REMOVE leaseOwner, leaseUntil';
    if (outcome.errorCode) {
      sets.push('errorCode = :code', 'errorMessage = :msg');
      values[':code'] = outcome.errorCode;
      values[':msg'] = outcome.errorMessage ?? '';
    } else {
      remove += ', errorCode, errorMessage';
    }
    const ok = await this.fencedUpdate(lease, `SET ${sets.join(', ')}${remove}`, values, {
      '#attempt': lease.owner,
    });
    return ok ? 'recorded' : 'lost';
  }

  async reserve(runId: string, reservationId: string, amountMicros: number) {
    // available = budget - spent - reserved; DynamoDB conditions cannot add, so the
    // ledger keeps the difference itself and the condition is a plain comparison.
    const ok = await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runItemKey(runId),
          UpdateExpression:
            'SET availableMicros = availableMicros - :a, reservedMicros = reservedMicros + :a ADD outstanding :ids',
          ConditionExpression: 'availableMicros >= :a AND NOT contains(outstanding, :id)',
          ExpressionAttributeValues: {
            ':a': amountMicros,
            ':id': reservationId,
            ':ids': new Set([reservationId]),
          },
        }),
      ),
    );
    if (ok) return 'reserved' as const;
    const { Item } = await this.get(runItemKey(runId));
    if (!Item) {
      throw new FanoutError(
        'INVALID_MESSAGE',
        `run "${runId}" does not exist in the state table; send the job again`,
      );
    }
    const outstanding = Item.outstanding as Set<string> | undefined;
    return outstanding?.has(reservationId) ? ('duplicate' as const) : ('over-budget' as const);
  }

  async settle(
    runId: string,
    reservationId: string,
    reservedMicros: number,
    actualMicros: number,
    kind: 'spent' | 'abandoned' = 'spent',
  ) {
    // The reservation id leaves the outstanding set in the same write that counts the
    // spend, so a retried settle finds it gone and counts nothing (pitfall 6).
    const ok = await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runItemKey(runId),
          UpdateExpression:
            'SET availableMicros = availableMicros + :back, reservedMicros = reservedMicros - :r, ' +
            `${kind}Micros = ${kind}Micros + :s DELETE outstanding :ids`,
          ConditionExpression: 'contains(outstanding, :id)',
          ExpressionAttributeValues: {
            ':back': reservedMicros - actualMicros,
            ':r': reservedMicros,
            ':s': actualMicros,
            ':id': reservationId,
            ':ids': new Set([reservationId]),
          },
        }),
      ),
    );
    return ok ? ('settled' as const) : ('already-settled' as const);
  }

  private async queryAll(pk: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page: QueryCommandOutput = await this.call(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk },
            ExclusiveStartKey: start,
            ConsistentRead: true,
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async getJob(runId: string, jobKey: string): Promise<JobRecord | undefined> {
    const { Item } = await this.get(jobItemKey(runId, jobKey));
    return Item ? toJobRecord(Item) : undefined;
  }

  async listJobs(runId: string): Promise<JobRecord[]> {
    const shards = Array.from({ length: JOB_SHARDS }, (_, shard) => this.queryAll(`RUN#${runId}#J${shard}`));
    const items = (await Promise.all(shards)).flat();
    return items.map(toJobRecord).sort((a, b) => a.jobKey.localeCompare(b.jobKey, 'en', { numeric: true }));
  }

  async claimSlot(workerId: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: SLOTS_PK, sk: workerId },
          UpdateExpression: 'SET workerId = :id, slotOwner = :owner, leaseUntil = :until, heartbeatAt = :now',
          ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR slotOwner = :owner',
          ExpressionAttributeValues: {
            ':id': workerId,
            ':owner': owner,
            ':until': now + leaseMs,
            ':now': now,
          },
        }),
      ),
    );
  }

  async acquireSlot(
    count: number,
    owner: string,
    now: number,
    leaseMs: number,
    prefer = 0,
  ): Promise<string | undefined> {
    for (let i = 0; i < count; i++) {
      const workerId = slotName((prefer + i) % count);
      if (await this.claimSlot(workerId, owner, now, leaseMs)) return workerId;
    }
    return undefined;
  }

  async releaseSlot(workerId: string, owner: string, now: number): Promise<void> {
    await this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: SLOTS_PK, sk: workerId },
          UpdateExpression: 'SET leaseUntil = :now, heartbeatAt = :now REMOVE slotOwner',
          ConditionExpression: 'slotOwner = :owner',
          ExpressionAttributeValues: { ':owner': owner, ':now': now },
        }),
      ),
    );
  }

  async listSlots(): Promise<WorkerSlot[]> {
    const items = await this.queryAll(SLOTS_PK);
    return items.map((item) => ({
      workerId: item.workerId as string,
      ...(item.slotOwner ? { owner: item.slotOwner as string } : {}),
      leaseUntil: item.leaseUntil as number,
      heartbeatAt: item.heartbeatAt as number,
    }));
  }
}

function toJobRecord(item: Record<string, unknown>): JobRecord {
  const { pk: _pk, sk: _sk, [TTL_ATTRIBUTE]: _ttl, attemptCosts, ...rest } = item;
  // A job's cost is what all its attempts spent: retries, continuations and redrives included.
  const costMicros = Object.values((attemptCosts as Record<string, number> | undefined) ?? {}).reduce(
    (sum, cost) => sum + cost,
    0,
  );
  return { ...rest, costMicros } as unknown as JobRecord;
}

/** The table the core expects, for the embedded engine (the CDK stack declares the same on AWS). */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (error) {
    if (!isMissingTable(error)) throw error;
  }
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: tableName });
}
