import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ErrorCode } from '../../domain/errors.js';
import type {
  FinalStatus,
  JobLeases,
  JobOutcome,
  JobRecord,
  JobStatus,
  Lease,
  LeaseAnswer,
} from '../../ports/state.js';
import { JOB_SHARDS, jobItemKey, jobShardPk, TTL_ATTRIBUTE } from './schema.js';
import { DynamoTable, isConditionFailure } from './table.js';

/** Jobs and their leases: the fencing token on every write of a holder. */
export class DynamoJobLeases extends DynamoTable implements JobLeases {
  async registerJob(job: Parameters<JobLeases['registerJob']>[0]) {
    const created = await this.conditional(() =>
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...jobItemKey(job.runId, job.jobKey),
            runId: job.runId,
            jobKey: job.jobKey,
            title: job.title,
            ...(job.priority && job.priority !== 'normal' ? { priority: job.priority } : {}),
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
    if (outcome.verdict) {
      sets.push('verdict = :verdict');
      values[':verdict'] = outcome.verdict;
    } else {
      remove += ', verdict';
    }
    // Names that could be DynamoDB reserved words go through placeholders.
    sets.push('#invocations = :invocations');
    values[':invocations'] = outcome.invocations ?? 1;
    if (outcome.model) {
      sets.push('#model = :model');
      values[':model'] = outcome.model.slice(0, 200);
    } else {
      remove += ', #model';
    }
    if (outcome.verification) {
      sets.push('verification = :verification');
      // One line, bounded: the item stays far below DynamoDB's 400 KB.
      values[':verification'] = outcome.verification.slice(0, 500);
    } else {
      remove += ', verification';
    }
    if (outcome.errorCode) {
      sets.push('errorCode = :code', 'errorMessage = :msg');
      values[':code'] = outcome.errorCode;
      values[':msg'] = outcome.errorMessage ?? '';
    } else {
      remove += ', errorCode, errorMessage';
    }
    const ok = await this.fencedUpdate(lease, `SET ${sets.join(', ')}${remove}`, values, {
      '#attempt': lease.owner,
      '#invocations': 'invocations',
      '#model': 'model',
    });
    return ok ? 'recorded' : 'lost';
  }

  async getJob(runId: string, jobKey: string): Promise<JobRecord | undefined> {
    const { Item } = await this.get(jobItemKey(runId, jobKey));
    return Item ? toJobRecord(Item) : undefined;
  }

  async listJobs(runId: string): Promise<JobRecord[]> {
    const shards = Array.from({ length: JOB_SHARDS }, (_, shard) => this.queryAll(jobShardPk(runId, shard)));
    const items = (await Promise.all(shards)).flat();
    return items.map(toJobRecord).sort((a, b) => a.jobKey.localeCompare(b.jobKey, 'en', { numeric: true }));
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
