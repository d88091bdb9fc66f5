import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalQueue } from '../../shared/adapters/local-queue.js';
import { LIVE_ROUTES, localQueueAdmin, remoteQueueAdmin } from '../../shared/local/live-routes.js';
import { serveLive } from '../../shared/local/state-dir.js';
import type { QueueAdmin } from '../../shared/ports/queue.js';

describe('a live run serves its queue to the other commands', () => {
  it('answers every method of the admin port through its route as the queue itself does', async () => {
    // `fanout redrive --local` during a live run once met a 404: the proxy routed by hand
    // and had no /redrive. Now each method has its route, and this walks all of them.
    const stateDir = await mkdtemp(join(tmpdir(), 'fanout-live-'));
    const queue = LocalQueue.open(undefined, { visibilityTimeoutMs: 60_000, maxReceiveCount: 3 });
    const stop = await serveLive(stateDir, queue, 'http://127.0.0.1:1');
    try {
      const live = JSON.parse(await readFile(join(stateDir, 'live.json'), 'utf8')) as {
        controlEndpoint: string;
      };
      const remote = remoteQueueAdmin(live.controlEndpoint);
      const direct = localQueueAdmin(queue);
      const used = new Set<keyof QueueAdmin>();
      const both = async <K extends keyof QueueAdmin>(name: K, ...args: Parameters<QueueAdmin[K]>) => {
        used.add(name);
        const call = remote[name] as (...a: Parameters<QueueAdmin[K]>) => ReturnType<QueueAdmin[K]>;
        return call(...args);
      };

      expect(await both('send', [{ id: 'a', body: '{"job":1}' }])).toEqual({ sent: ['a'], failed: [] });
      const [record] = await queue.receive(1, 0);
      if (!record) throw new Error('nothing received');
      await queue.deadLetter(record, { code: 'AGENT_FAILED', message: 'broke' });
      expect(await both('depth')).toEqual(await direct.depth());
      expect(await both('deadLetters')).toEqual(await direct.deadLetters());
      expect(await both('redrive', [record.messageId])).toBe(1);
      expect(await direct.depth()).toEqual({ visible: 1, inFlight: 0, deadLetters: 0 });
      expect([...used].sort()).toEqual(Object.keys(LIVE_ROUTES).sort());
    } finally {
      await stop();
      queue.close();
    }
  });
});
