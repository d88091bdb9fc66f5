import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { slotName } from '../../domain/job.js';
import type { WorkerSlot, WorkerSlots } from '../../ports/state.js';
import { SLOTS_PK, slotItemKey } from './schema.js';
import { DynamoTable } from './table.js';

/** Worker identities (worker-01..N), each a lease held by one invocation or process. */
export class DynamoWorkerSlots extends DynamoTable implements WorkerSlots {
  async claimSlot(workerId: string, owner: string, now: number, leaseMs: number): Promise<boolean> {
    return this.conditional(() =>
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: slotItemKey(workerId),
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
          Key: slotItemKey(workerId),
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
