import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand, CreateTableCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
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
});
