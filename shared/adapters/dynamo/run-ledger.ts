import { PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { FanoutError } from '../../domain/errors.js';
import type { RunLedger, RunRecord } from '../../ports/state.js';
import { RUN_INDEX_PK, runItemKey, TTL_ATTRIBUTE } from './schema.js';
import { DynamoTable } from './table.js';

/** Runs and the budget ledger: one item per run, every change a conditional update. */
export class DynamoRunLedger extends DynamoTable implements RunLedger {
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

  async reserve(runId: string, reservationId: string, amountMicros: number) {
    // available = budget - spent - reserved; DynamoDB conditions cannot add, so the
    // ledger keeps the difference itself and the condition is a plain comparison.
    const ok = await this.updateLedger(
      runId,
      'SET availableMicros = availableMicros - :a, reservedMicros = reservedMicros + :a ADD outstanding :ids',
      'availableMicros >= :a AND NOT contains(outstanding, :id)',
      { ':a': amountMicros, ':id': reservationId, ':ids': new Set([reservationId]) },
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
    const ok = await this.updateLedger(
      runId,
      'SET availableMicros = availableMicros + :back, reservedMicros = reservedMicros - :r, ' +
        `${kind}Micros = ${kind}Micros + :s DELETE outstanding :ids`,
      'contains(outstanding, :id)',
      {
        ':back': reservedMicros - actualMicros,
        ':r': reservedMicros,
        ':s': actualMicros,
        ':id': reservationId,
        ':ids': new Set([reservationId]),
      },
    );
    return ok ? ('settled' as const) : ('already-settled' as const);
  }

  /** One conditional update of the run's ledger item: true when applied. */
  private updateLedger(
    runId: string,
    update: string,
    condition: string,
    values: Record<string, unknown>,
  ): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runItemKey(runId),
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeValues: values,
        }),
      ),
    );
  }
}
