import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LocalQueue } from '../adapters/local-queue.js';
import { FanoutError } from '../domain/errors.js';
import type { QueueAdmin } from '../ports/queue.js';

/**
 * The routes a live `fanout run` serves its queue on, one per method of the admin port.
 * The server and the client are both built from this table, and the table must name
 * every method (it is a Record over the port's keys), so a command cannot reach a live
 * run by a route the run does not serve.
 */
export const LIVE_ROUTES: Readonly<
  Record<keyof QueueAdmin, { readonly method: 'GET' | 'POST'; readonly path: string }>
> = {
  send: { method: 'POST', path: '/send' },
  depth: { method: 'GET', path: '/depth' },
  deadLetters: { method: 'GET', path: '/dead-letters' },
  redrive: { method: 'POST', path: '/redrive' },
};

const names = Object.keys(LIVE_ROUTES) as (keyof QueueAdmin)[];

/** Answers the live routes from the run's own queue; anything else is a 404. */
export function serveQueueAdmin(admin: QueueAdmin) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const name = names.find((n) => LIVE_ROUTES[n].method === req.method && LIVE_ROUTES[n].path === req.url);
    if (!name) {
      res.writeHead(404);
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const method = admin[name] as (argument?: unknown) => Promise<unknown>;
      Promise.resolve()
        .then(() => method.call(admin, text ? JSON.parse(text) : undefined))
        .then(
          (value) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(value));
          },
          (error: unknown) => {
            res.writeHead(500);
            res.end(String(error));
          },
        );
    });
  };
}

/** The admin port of the live run at `endpoint`, through its routes. */
export function remoteQueueAdmin(endpoint: string): QueueAdmin {
  const call = async (name: keyof QueueAdmin, argument?: unknown): Promise<never> => {
    const route = LIVE_ROUTES[name];
    const response = await fetch(`${endpoint}${route.path}`, {
      method: route.method,
      ...(argument === undefined
        ? {}
        : { body: JSON.stringify(argument), headers: { 'content-type': 'application/json' } }),
    });
    if (!response.ok) {
      throw new FanoutError(
        'STATE_UNAVAILABLE',
        `the running fanout run answered ${response.status} to ${route.method} ${route.path}: ${await response.text()}`,
      );
    }
    return (await response.json()) as never;
  };
  return {
    send: (entries) => call('send', entries),
    depth: () => call('depth'),
    deadLetters: () => call('deadLetters'),
    redrive: (ids) => call('redrive', ids),
  };
}

/** The admin port of a queue this process holds. */
export function localQueueAdmin(queue: LocalQueue): QueueAdmin {
  return {
    send: (entries) => queue.send(entries),
    depth: async () => queue.depth(),
    deadLetters: async () => queue.deadLetters(),
    redrive: async (ids) => queue.redrive(ids),
  };
}
