import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { embeddedDynamoClient, startEmbeddedDynamo } from '../../shared/adapters/embedded-dynamo.js';

describe('the embedded engine', () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  afterEach(() => {
    process.off('uncaughtException', onUncaught);
  });

  it('closes without a request meeting a closed database, even one whose client left mid-request', async () => {
    // `fanout status --watch` polls a run's engine while the run closes it: the run must not
    // die of the requests being served at that moment.
    process.on('uncaughtException', onUncaught);
    const engine = await startEmbeddedDynamo(await mkdtemp(join(tmpdir(), 'fanout-engine-')));
    const client = embeddedDynamoClient(engine.endpoint, 1);
    await client.send(
      new CreateTableCommand({
        TableName: 'load',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: 'load' });
    for (let i = 0; i < 300; i += 25) {
      await client.send(
        new BatchWriteItemCommand({
          RequestItems: {
            load: Array.from({ length: 25 }, (_, j) => ({
              PutRequest: { Item: { pk: { S: `k${i + j}` }, body: { S: 'x'.repeat(2000) } } },
            })),
          },
        }),
      );
    }
    // A second client scans without a pause; it is destroyed mid-request (as a process that
    // ends destroys its clients) and the engine closed at once, as `fanout run` does at its end.
    const reader = embeddedDynamoClient(engine.endpoint, 1);
    let scans = 0;
    const lanes = Array.from({ length: 8 }, async () => {
      for (;;) {
        try {
          await reader.send(new ScanCommand({ TableName: 'load' }));
          scans++;
        } catch {
          return;
        }
      }
    });
    while (scans < 16) await new Promise((resolve) => setImmediate(resolve));
    reader.destroy();
    await engine.close();
    await Promise.all(lanes);
    client.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(uncaught).toEqual([]);
  });

  it('answers a request through the channel as over HTTP: items, a failed condition, a refused request', async () => {
    // Local workers reach the run's engine through their IPC channel (issue #14): the request
    // the SDK builds goes to the engine's handler as objects, and its answer comes back whole.
    const engine = await startEmbeddedDynamo();
    const http = embeddedDynamoClient(engine.endpoint, 1);
    const channel = embeddedDynamoClient(engine.endpoint, 1, engine.handle);
    try {
      await http.send(
        new CreateTableCommand({
          TableName: 'same',
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      // A new table is CREATING until the engine's timer makes it ACTIVE (a moment, on a busy machine).
      await waitUntilTableExists(
        { client: http, maxWaitTime: 30, minDelay: 1, maxDelay: 1 },
        { TableName: 'same' },
      );
      const text = 'ünïcödé ✓ '.repeat(100);
      await channel.send(
        new PutItemCommand({ TableName: 'same', Item: { pk: { S: 'a' }, text: { S: text } } }),
      );
      const viaHttp = await http.send(new GetItemCommand({ TableName: 'same', Key: { pk: { S: 'a' } } }));
      const viaChannel = await channel.send(
        new GetItemCommand({ TableName: 'same', Key: { pk: { S: 'a' } } }),
      );
      expect(viaChannel.Item).toEqual(viaHttp.Item);
      expect(viaChannel.Item?.text?.S).toBe(text);

      const update = (client: typeof http) =>
        client.send(
          new UpdateItemCommand({
            TableName: 'same',
            Key: { pk: { S: 'a' } },
            UpdateExpression: 'SET n = :n',
            ConditionExpression: 'attribute_not_exists(pk)',
            ExpressionAttributeValues: { ':n': { N: '1' } },
          }),
        );
      const failed = await update(channel).catch((error: Error) => error);
      expect((failed as Error).name).toBe('ConditionalCheckFailedException');
      expect((failed as Error).name).toBe(
        ((await update(http).catch((error: Error) => error)) as Error).name,
      );

      const refused = await channel
        .send(new GetItemCommand({ TableName: 'no', Key: { pk: { S: 'a' } } }))
        .catch((error: Error) => error);
      expect((refused as Error).name).toBe('ValidationException');
    } finally {
      http.destroy();
      channel.destroy();
      await engine.close();
    }
  });
});
