import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoState } from '../../shared/adapters/dynamo-state.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { type StateFixture, startState } from '../support/engines.js';

let fx: StateFixture;
beforeAll(async () => {
  fx = await startState('fanout-state');
});
afterAll(() => fx.close());

/**
 * A loopback front for the engine that answers every `throttleEvery`-th request as
 * DynamoDB does when a partition is over its throughput, and forwards the rest.
 */
async function throttlingFront(target: string, throttleEvery: number) {
  let seen = 0;
  let throttled = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen++;
      if (seen % throttleEvery === 0) {
        throttled++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
            message: 'The level of configured provisioned throughput for the table was exceeded.',
          }),
        );
        return;
      }
      const url = new URL(target);
      const forward = request(
        { host: url.hostname, port: url.port, method: req.method, path: req.url, headers: req.headers },
        (upstream) => {
          res.writeHead(upstream.statusCode ?? 500, upstream.headers);
          upstream.pipe(res);
        },
      );
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ seen, throttled }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

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
    const front = await throttlingFront(fx.engine.endpoint, 3);
    const client = embeddedDynamoClient(front.endpoint);
    const state = new DynamoState({ tableName: 'fanout-state', client });
    try {
      await state.createRun({ runId: 'throttled', budgetMicros: 100_000, createdAt: 0 });
      for (let i = 0; i < 10; i++) {
        expect(await state.reserve('throttled', `j#${i}|o|1|1000|0`, 1000)).toBe('reserved');
        expect(await state.settle('throttled', `j#${i}|o|1|1000|0`, 1000, 600)).toBe('settled');
      }
      expect(front.stats().throttled).toBeGreaterThan(5);
      expect(await fx.state.getRun('throttled')).toMatchObject({
        spentMicros: 6000,
        reservedMicros: 0,
        availableMicros: 94_000,
        outstanding: [],
      });
    } finally {
      client.destroy();
      await front.close();
    }
  });
});
