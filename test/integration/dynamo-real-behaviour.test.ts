import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamoState } from '../../shared/adapters/dynamo/index.js';
import { TTL_ATTRIBUTE } from '../../shared/adapters/dynamo/schema.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { type StateFixture, startState } from '../support/engines.js';
import { dynamoFront, throttlingFront } from '../support/throttling-front.js';

let fx: StateFixture;
beforeAll(async () => {
  fx = await startState('fanout-state');
});
afterAll(() => fx.close());

describe('the DynamoDB adapter on behaviour real DynamoDB has', () => {
  it('reads every page of a run larger than a 1 MB query page', async () => {
    const title = 'x'.repeat(90_000);
    const runId = 'paged';
    const keys = Array.from({ length: 300 }, (_, i) => `acme/api#${i}`);
    for (let i = 0; i < keys.length; i += 25) {
      await Promise.all(
        keys
          .slice(i, i + 25)
          .map((jobKey) => fx.state.registerJob({ runId, jobKey, title, registeredAt: 1 })),
      );
    }
    const jobs = await fx.state.listJobs(runId);
    expect(jobs).toHaveLength(300);
    expect(new Set(jobs.map((j) => j.jobKey)).size).toBe(300);
  });

  it('retries throttled calls with backoff, and counts each write once', async () => {
    const front = await throttlingFront(fx.engine.endpoint, (n) => n % 3 === 0);
    const client = embeddedDynamoClient(front.endpoint);
    const state = dynamoState({ tableName: 'fanout-state', client });
    try {
      await state.createRun({ runId: 'throttled', budgetMicros: 100_000, createdAt: 0 });
      for (let i = 0; i < 10; i++) {
        const answer = await state.reserve('throttled', `j${i}.o.1.1000.0`, 1000);
        expect(answer.kind).toBe('reserved');
        if (answer.kind !== 'reserved') continue;
        const entry = { id: `j${i}.o.1.1000.0`, shard: answer.shard };
        expect(await state.settle('throttled', entry, 1000, 600)).toBe('settled');
      }
      expect(front.stats().throttled).toBeGreaterThan(5);
      expect(await fx.state.getRun('throttled')).toMatchObject({
        spentMicros: 6000,
        reservedMicros: 0,
        availableMicros: 94_000,
        openReservations: 0,
        consistent: true,
      });
    } finally {
      client.destroy();
      await front.close();
    }
  });

  it('counts a lease write the SDK retried after it succeeded as acquired, not held by another', async () => {
    let lostOne = false;
    const front = await dynamoFront(fx.engine.endpoint, (_n, body) => {
      if (lostOne || !body.includes('leaseOwner = :owner')) return 'pass';
      lostOne = true;
      return 'lose-answer';
    });
    const client = embeddedDynamoClient(front.endpoint);
    const state = dynamoState({ tableName: 'fanout-state', client });
    try {
      const answer = await state.acquireLease(
        'lost',
        'acme/api#1',
        { owner: 'me', worker: 'w' },
        1000,
        60_000,
      );
      expect(front.stats().lost).toBe(1);
      expect(answer).toEqual({ kind: 'acquired', fence: 1, attempts: 1, firstStartedAt: 1000 });
      // Another worker still finds it held.
      expect(
        await fx.state.acquireLease('lost', 'acme/api#1', { owner: 'other', worker: 'w2' }, 1001, 60_000),
      ).toMatchObject({ kind: 'held', owner: 'me' });
    } finally {
      client.destroy();
      await front.close();
    }
  });

  it('lets DynamoDB expire records after the retention the stack sets', async () => {
    const client = embeddedDynamoClient(fx.engine.endpoint);
    try {
      const state = dynamoState({ tableName: 'fanout-state', client, retentionDays: 9 });
      await state.createRun({ runId: 'ttl', budgetMicros: 1, createdAt: 86_400_000 });
      const { Item } = await DynamoDBDocumentClient.from(client).send(
        new GetCommand({ TableName: 'fanout-state', Key: { pk: 'RUN#ttl', sk: 'RUN' } }),
      );
      expect(Item?.[TTL_ATTRIBUTE]).toBe(86_400 + 9 * 86_400);
    } finally {
      client.destroy();
    }
  });
});
