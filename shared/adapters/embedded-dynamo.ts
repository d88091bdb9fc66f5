import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

export interface EmbeddedDynamo {
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts dynalite (an independent implementation of the DynamoDB API) on a free
 * loopback port: on disk under `path`, or in memory when no path is given.
 */
export async function startEmbeddedDynamo(path?: string): Promise<EmbeddedDynamo> {
  const server = dynalite({ path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  // dynalite closes its database once the HTTP server has closed, and a request whose
  // socket is cut (a client destroyed mid-request) goes on reading the database. A read
  // that meets the closed database throws in whatever process hosts the engine (seen as an
  // uncaught "Iterator is not open" ending `fanout run` while `status --watch` polled it).
  // So closing answers new requests 503 (the SDK retries, then finds the port gone), waits
  // until every request in flight has been answered (dynalite's `res.end`, whether or not
  // its socket still exists), lets the read-ahead those reads scheduled on the next ticks
  // start, and only then closes the server and cuts the idle keep-alive sockets.
  const serve = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  let closing = false;
  let inFlight = 0;
  let drained: (() => void) | undefined;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (closing) {
      res.writeHead(503, { connection: 'close' });
      res.end();
      return;
    }
    inFlight++;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((...args: unknown[]) => {
      inFlight--;
      if (inFlight === 0) drained?.();
      return end(...args);
    }) as ServerResponse['end'];
    for (const handler of serve) handler.call(server, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      closing = true;
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets from SDK clients would hold close() open.
        server.closeAllConnections?.();
      });
    },
  };
}

/**
 * The embedded engine requires an Authorization header and never checks it. Signing a
 * request (SigV4: SHA-256 of the body, an HMAC chain over the headers) cost about 5% of a
 * worker's CPU per job in the profile (`npm run profile`), so local clients send a fixed
 * header instead. Never used against AWS: only embeddedDynamoClient sets it.
 */
const UNCHECKED_SIGNATURE = {
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
  'x-amz-date': '20260101T000000Z',
};
const unsigned = {
  sign: async <T extends { headers: Record<string, string> }>(request: T): Promise<T> => {
    Object.assign(request.headers, UNCHECKED_SIGNATURE);
    return request;
  },
};

/** A DynamoDB client for an embedded engine: any credentials, a fixed region, no signing. */
export function embeddedDynamoClient(endpoint: string, maxAttempts = 5): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts,
    signer: unsigned as unknown as DynamoDBClientConfig['signer'],
  });
}
