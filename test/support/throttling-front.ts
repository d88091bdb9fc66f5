import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the front does with one request: pass it on, throttle it, or apply it and lose the answer. */
export type FrontAction = 'pass' | 'throttle' | 'lose-answer';

const throttled = JSON.stringify({
  __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
  message: 'The level of configured provisioned throughput for the table was exceeded.',
});
const internal = JSON.stringify({
  __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
  message: 'Internal server error',
});

/**
 * A loopback front for the engine that does to the requests `decide` picks what
 * DynamoDB and networks do: answer as a partition over its throughput, or apply the
 * write and lose its answer (the client sees a 500 and its SDK retries a write that
 * already happened). The rest is forwarded.
 */
export async function dynamoFront(
  target: string,
  decide: (requestNumber: number, body: string) => FrontAction,
) {
  let seen = 0;
  let throttledCount = 0;
  let lost = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen++;
      const body = Buffer.concat(chunks);
      const action = decide(seen, body.toString('utf8'));
      if (action === 'throttle') {
        throttledCount++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(throttled);
        return;
      }
      const url = new URL(target);
      const forward = request(
        { host: url.hostname, port: url.port, method: req.method, path: req.url, headers: req.headers },
        (upstream) => {
          if (action === 'lose-answer') {
            lost++;
            upstream.resume();
            res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
            res.end(internal);
            return;
          }
          res.writeHead(upstream.statusCode ?? 500, upstream.headers);
          upstream.pipe(res);
        },
      );
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ seen, throttled: throttledCount, lost }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A front that throttles the requests `throttle` picks, as DynamoDB does when a partition is over its throughput. */
export function throttlingFront(target: string, throttle: (requestNumber: number) => boolean) {
  return dynamoFront(target, (n) => (throttle(n) ? 'throttle' : 'pass'));
}
