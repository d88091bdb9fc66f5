import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FanoutError, toFanoutError } from '../shared/domain/errors.js';
import type { PageAssets } from './assets.js';
import type { DashboardSource } from './source.js';
import type { DashboardView } from './view.js';

export interface DashboardOptions {
  readonly source: DashboardSource;
  readonly assets: PageAssets;
  /** @default 127.0.0.1 */
  readonly host?: string;
  /** 0: any free port. */
  readonly port: number;
  /** Redrive from the page; refused unless set. */
  readonly allowActions?: boolean;
  /** How often the state is read while a page is open. @default 1000 */
  readonly intervalMs?: number;
}

export interface Dashboard {
  readonly url: string;
  readonly token: string;
  close(): Promise<void>;
}

/** The page's HTML: the token for actions travels in it, never in a URL. */
const html = (token: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="fanout-token" content="${token}">
<title>fanout dashboard</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<div id="app"><p>Loading...</p></div>
<script src="/app.js"></script>
</body>
</html>`;

/**
 * The dashboard's server (node:http): the page, a JSON API over the same source `fanout
 * status` reads, and server-sent events that push the run's view when it changes (about a
 * second). Server-sent events over polling: one request per page instead of one per
 * second, the browser reconnects by itself, and the server reads the state once for every
 * page open on the same run.
 *
 * Actions (redrive) change state: refused unless the server was started with
 * --allow-actions, and from any page but its own: the Host header must name this server
 * (no DNS rebinding), the Origin (when sent) must be its own, and the request must carry
 * the token the page holds.
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const interval = options.intervalMs ?? 1000;
  const token = randomBytes(24).toString('hex');
  const allowActions = options.allowActions === true;
  const streams = new Map<ServerResponse, { run: string | undefined; last: string }>();
  // Undefined: bound to every address (--host 0.0.0.0), reached by names this cannot know.
  let allowedHosts: Set<string> | undefined = new Set();

  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    type = 'application/json; charset=utf-8',
  ) => {
    res.writeHead(status, {
      'content-type': type,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy':
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const fail = (res: ServerResponse, error: unknown) => {
    const e = toFanoutError(error);
    send(res, e.code === 'INVALID_INPUT' ? 400 : 500, { error: e.message, code: e.code });
  };
  const view = (run: string | undefined) => options.source.view(run, allowActions);

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => fail(res, error));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A page of another site can make the browser send requests here under a name of its own
    // that resolves to this address (DNS rebinding): only this server's own names are served.
    if (allowedHosts && !allowedHosts.has(String(req.headers.host ?? '').toLowerCase())) {
      send(res, 421, { error: `unexpected Host header "${req.headers.host}"` });
      return;
    }
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const run = url.searchParams.get('run') || undefined;
    if (req.method === 'POST') return action(req, res, url);
    if (req.method !== 'GET') return send(res, 405, { error: 'GET or POST' });
    switch (url.pathname) {
      case '/':
        return send(res, 200, html(token), 'text/html; charset=utf-8');
      case '/app.js':
        return send(res, 200, options.assets.js, 'text/javascript; charset=utf-8');
      case '/app.css':
        return send(res, 200, options.assets.css, 'text/css; charset=utf-8');
      case '/favicon.ico':
        res.writeHead(204);
        res.end();
        return;
      case '/api/view':
        return send(res, 200, await view(run));
      case '/api/jobs': {
        if (!run) return send(res, 400, { error: 'name the run: ?run=ID' });
        return send(res, 200, await options.source.jobRows(run));
      }
      case '/api/job': {
        const key = url.searchParams.get('key');
        if (!run || !key)
          return send(res, 400, { error: 'name the run and the job: ?run=ID&key=owner/repo#N' });
        return send(res, 200, await options.source.job(run, key));
      }
      case '/api/dead-letters':
        return send(res, 200, await options.source.deadLetters(run));
      case '/api/events': {
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-store',
          connection: 'keep-alive',
        });
        // The browser reconnects after this long when the connection drops.
        res.write('retry: 1000\n\n');
        streams.set(res, { run, last: '' });
        req.on('close', () => streams.delete(res));
        await push([...streams].filter(([stream]) => stream === res));
        return;
      }
      default:
        return send(res, 404, { error: `no page ${url.pathname}` });
    }
  }

  async function action(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (url.pathname !== '/api/redrive') return send(res, 404, { error: `no action ${url.pathname}` });
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${req.headers.host}`) {
      return send(res, 403, { error: `refused: a request from ${origin}, not this dashboard's page` });
    }
    if (req.headers['x-fanout-token'] !== token) {
      return send(res, 403, { error: "refused: the request does not carry the dashboard page's token" });
    }
    if (!allowActions) {
      return send(res, 403, {
        error: 'refused: actions are off; start the dashboard with --allow-actions to redrive from the page',
      });
    }
    const body = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
    let ids: string[] | 'all';
    try {
      const parsed = JSON.parse(body) as { ids?: unknown; all?: unknown };
      if (parsed.all === true) ids = 'all';
      else if (Array.isArray(parsed.ids) && parsed.ids.every((id) => typeof id === 'string'))
        ids = parsed.ids;
      else throw new Error('shape');
    } catch {
      throw new FanoutError('INVALID_INPUT', 'send {"ids": ["..."]} or {"all": true}');
    }
    const moved = await options.source.redrive(ids);
    // Every open page sees the change at once.
    await push([...streams]);
    return send(res, 200, { moved });
  }

  /** Sends each stream its run's view when it changed since the last one it got. */
  async function push(targets: [ServerResponse, { run: string | undefined; last: string }][]): Promise<void> {
    const byRun = new Map<string, Promise<DashboardView | { error: string }>>();
    for (const [res, stream] of targets) {
      const key = stream.run ?? '';
      if (!byRun.has(key))
        byRun.set(
          key,
          view(stream.run).catch((error: unknown) => ({ error: toFanoutError(error).message })),
        );
      const data = await byRun.get(key);
      const { at: _at, ...comparable } = data as DashboardView;
      const text = JSON.stringify(comparable);
      if (text === stream.last) {
        res.write(': unchanged\n\n');
        continue;
      }
      stream.last = text;
      res.write(`data: ${JSON.stringify(data)}\n\n`);
    }
  }

  let reading: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (reading || streams.size === 0) return;
    reading = push([...streams]).finally(() => {
      reading = undefined;
    });
  }, interval);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  allowedHosts =
    host === '0.0.0.0' || host === '::'
      ? undefined
      : new Set([
          `${shown}:${port}`.toLowerCase(),
          ...(host === '127.0.0.1' || host === '::1' ? [`localhost:${port}`] : []),
        ]);
  return {
    url: `http://${shown}:${port}/`,
    token,
    async close() {
      clearInterval(timer);
      // A read under way finishes before the source closes under it.
      await reading;
      for (const res of streams.keys()) res.end();
      streams.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await options.source.close();
    },
  };
}
