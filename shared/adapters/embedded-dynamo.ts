import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import dynalite from 'dynalite';

export interface EmbeddedDynamo {
  readonly endpoint: string;
  /** One request straight to the engine, without a socket (for the local workers' channel). */
  handle(request: EngineRequest): Promise<EngineReply>;
  close(): Promise<void>;
}

/** A DynamoDB API request as the SDK would put it on the wire. */
export interface EngineRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface EngineReply {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
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
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
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
  };
  server.on('request', onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    handle: (request) => handleWithoutSocket(onRequest, request),
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
 * Hands a request to the engine's HTTP handler as objects, not bytes on a socket: the
 * handler reads the request's method, url, headers and body events and answers through
 * statusCode, setHeader, writeHead and end, which is all these two objects provide.
 */
function handleWithoutSocket(
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
  request: EngineRequest,
): Promise<EngineReply> {
  return new Promise((resolve) => {
    const req = Object.assign(new EventEmitter(), {
      method: request.method,
      url: request.path,
      headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v])),
    });
    const headers: Record<string, string> = {};
    const res = {
      statusCode: 200,
      setHeader(name: string, value: unknown) {
        headers[name.toLowerCase()] = String(value);
      },
      writeHead(statusCode: number, more?: Record<string, unknown>) {
        res.statusCode = statusCode;
        for (const [name, value] of Object.entries(more ?? {})) res.setHeader(name, value);
      },
      end(body?: string | Buffer) {
        resolve({ statusCode: res.statusCode, headers, body: body === undefined ? '' : String(body) });
      },
    };
    onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    if (request.body) req.emit('data', Buffer.from(request.body));
    req.emit('end');
  });
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

/**
 * The SDK's transport to an engine in another process over a message channel (a local
 * worker's IPC to the run's process) instead of HTTP: the same request and answer, minus
 * the HTTP client and server on either side.
 */
export function channelRequestHandler(call: (request: EngineRequest) => Promise<EngineReply>) {
  return {
    metadata: { handlerProtocol: 'fanout-channel' },
    async handle(request: {
      method: string;
      path: string;
      headers: Record<string, string>;
      body?: string | Uint8Array;
    }) {
      const body =
        request.body === undefined
          ? ''
          : typeof request.body === 'string'
            ? request.body
            : // Over the bytes: the SDK's body answers valueOf() with a warning about string methods.
              Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength).toString(
                'utf8',
              );
      const reply = await call({
        method: request.method,
        path: request.path,
        headers: request.headers,
        body,
      });
      return {
        response: { statusCode: reply.statusCode, headers: reply.headers, body: Buffer.from(reply.body) },
      };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    destroy: () => undefined,
  };
}

/**
 * A DynamoDB client for an embedded engine: any credentials, a fixed region, no signing;
 * over HTTP to `endpoint`, or through `channel` when given.
 */
export function embeddedDynamoClient(
  endpoint: string,
  maxAttempts = 5,
  channel?: (request: EngineRequest) => Promise<EngineReply>,
  /** A request with no answer after this long fails, and the SDK tries it again. @default none */
  requestTimeoutMs?: number,
): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts,
    signer: unsigned as unknown as DynamoDBClientConfig['signer'],
    ...(channel
      ? {
          requestHandler: channelRequestHandler(channel) as unknown as DynamoDBClientConfig['requestHandler'],
        }
      : requestTimeoutMs
        ? { requestHandler: new NodeHttpHandler({ requestTimeout: requestTimeoutMs }) }
        : {}),
  });
}
