import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalQueue } from '../../shared/adapters/local-queue.js';

/** A clock the test moves, so visibility timeouts are exact without waiting. */
function manualClock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('local queue (SQS semantics)', () => {
  it('delivers a message again after its visibility timeout when it was not deleted', async () => {
    const clock = manualClock();
    const queue = LocalQueue.open(undefined, {
      visibilityTimeoutMs: 30_000,
      maxReceiveCount: 5,
      clock: clock.now,
    });
    await queue.send([{ id: 'a', body: 'hello' }]);
    const [first] = await queue.receive(10, 0);
    expect(first?.receiveCount).toBe(1);
    expect(await queue.receive(10, 0)).toEqual([]);
    clock.advance(29_999);
    expect(await queue.receive(10, 0)).toEqual([]);
    clock.advance(1);
    const [second] = await queue.receive(10, 0);
    expect(second).toMatchObject({ messageId: first?.messageId, body: 'hello', receiveCount: 2 });
    // The first delivery's receipt is stale now: deleting with it changes nothing, as on SQS.
    await queue.delete(first as NonNullable<typeof first>);
    expect(queue.isEmpty()).toBe(false);
    await queue.delete(second as NonNullable<typeof second>);
    expect(queue.isEmpty()).toBe(true);
  });

  it('moves a message to the dead-letter queue after maxReceiveCount deliveries', async () => {
    const clock = manualClock();
    const queue = LocalQueue.open(undefined, {
      visibilityTimeoutMs: 1000,
      maxReceiveCount: 3,
      clock: clock.now,
    });
    await queue.send([{ id: 'a', body: 'poison-ish' }]);
    for (let i = 1; i <= 3; i++) {
      const records = await queue.receive(1, 0);
      expect(records[0]?.receiveCount).toBe(i);
      clock.advance(1000);
    }
    expect(await queue.receive(1, 0)).toEqual([]);
    expect(queue.deadLetters()).toEqual([
      expect.objectContaining({ body: 'poison-ish', code: 'MAX_RECEIVES_EXCEEDED', receiveCount: 3 }),
    ]);
    expect(queue.depth()).toEqual({ visible: 0, inFlight: 0, deadLetters: 1 });
  });

  it('dead-letters at once with the reason a worker gives, and redrives', async () => {
    const queue = LocalQueue.open(undefined, { visibilityTimeoutMs: 1000, maxReceiveCount: 3 });
    await queue.send([{ id: 'a', body: 'x' }]);
    const [record] = await queue.receive(1, 0);
    await queue.deadLetter(record as NonNullable<typeof record>, {
      code: 'INVALID_MESSAGE',
      message: 'not JSON',
    });
    expect(queue.deadLetters()[0]).toMatchObject({ code: 'INVALID_MESSAGE', reason: 'not JSON' });
    expect(queue.redrive()).toBe(1);
    expect((await queue.receive(1, 0))[0]).toMatchObject({ body: 'x', receiveCount: 1 });
  });

  it('long-polls until a message is sent', async () => {
    const queue = LocalQueue.open(undefined, { visibilityTimeoutMs: 1000, maxReceiveCount: 3 });
    const waiting = queue.receive(1, 5000);
    await queue.send([{ id: 'a', body: 'late' }]);
    expect((await waiting)[0]?.body).toBe('late');
  });

  it('serves groups in turn: a small repository sent after a large one is not kept behind its backlog', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fanout-fair-'));
    const open = () => LocalQueue.open(dir, { visibilityTimeoutMs: 60_000, maxReceiveCount: 5 });
    const first = open();
    await first.send(
      Array.from({ length: 500 }, (_, i) => ({ id: `a${i}`, body: `a/big#${i}`, group: 'a/big' })),
    );
    await first.send(
      Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, body: `b/small#${i}`, group: 'b/small' })),
    );
    first.close();
    // Reopened, so the groups are read back from the journal.
    const queue = open();
    const order: string[] = [];
    for (let i = 0; i < 40; i++) for (const record of await queue.receive(1, 0)) order.push(record.body);
    const small = order.map((body, i) => (body.startsWith('b/') ? i : -1)).filter((i) => i >= 0);
    // All ten of the small repository's messages in the first 20 deliveries, in their order.
    expect(small).toHaveLength(10);
    expect(Math.max(...small)).toBeLessThan(20);
    expect(order.filter((body) => body.startsWith('b/'))).toEqual(
      Array.from({ length: 10 }, (_, i) => `b/small#${i}`),
    );
    // The large one keeps its own order too.
    expect(order.filter((body) => body.startsWith('a/')).slice(0, 5)).toEqual([
      'a/big#0',
      'a/big#1',
      'a/big#2',
      'a/big#3',
      'a/big#4',
    ]);
    // A batch takes one of each group before a second of any.
    const batch = LocalQueue.open(undefined, { visibilityTimeoutMs: 60_000, maxReceiveCount: 5 });
    await batch.send([
      { id: '1', body: 'x1', group: 'x' },
      { id: '2', body: 'x2', group: 'x' },
      { id: '3', body: 'y1', group: 'y' },
    ]);
    expect((await batch.receive(2, 0)).map((r) => r.body).sort()).toEqual(['x1', 'y1']);
    queue.close();
  });

  it('delivers every waiting message of a higher priority first, across a restart and a redrive', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fanout-priority-'));
    const clock = manualClock();
    const open = () =>
      LocalQueue.open(dir, { visibilityTimeoutMs: 60_000, maxReceiveCount: 5, clock: clock.now });
    const first = open();
    await first.send(
      Array.from({ length: 6 }, (_, i) => ({ id: `l${i}`, body: `low${i}`, priority: 'low' as const })),
    );
    await first.send(
      Array.from({ length: 6 }, (_, i) => ({ id: `n${i}`, body: `normal${i}`, group: i % 2 ? 'x' : 'y' })),
    );
    await first.send([
      { id: 'h0', body: 'high0', group: 'x', priority: 'high' },
      { id: 'h1', body: 'high1', group: 'y', priority: 'high' },
    ]);
    first.close();
    // Reopened: each message's priority is read back from the journal.
    const queue = open();
    const batch = await queue.receive(4, 0);
    // Both high ones, then normal ones (the groups in turn); no low one while a normal one waits.
    expect(batch.map((r) => r.body)).toEqual(['high0', 'high1', 'normal0', 'normal1']);
    // A high one given back to the queue goes ahead of the normal ones still waiting.
    await queue.changeVisibility(batch[0] as (typeof batch)[number], 0);
    expect((await queue.receive(1, 0)).map((r) => r.body)).toEqual(['high0']);
    const rest: string[] = [];
    for (let i = 0; i < 10; i++) for (const r of await queue.receive(1, 0)) rest.push(r.body);
    expect(rest).toEqual([
      'normal2',
      'normal3',
      'normal4',
      'normal5',
      'low0',
      'low1',
      'low2',
      'low3',
      'low4',
      'low5',
    ]);
    // A dead-lettered high one keeps its priority when it is redriven.
    const again = LocalQueue.open(undefined, { visibilityTimeoutMs: 60_000, maxReceiveCount: 5 });
    await again.send([
      { id: 'n', body: 'normal' },
      { id: 'h', body: 'high', priority: 'high' },
    ]);
    const [high] = await again.receive(1, 0);
    expect(high?.body).toBe('high');
    await again.deadLetter(high as NonNullable<typeof high>, { code: 'AGENT_FAILED', message: 'x' });
    again.redrive();
    expect((await again.receive(1, 0)).map((r) => r.body)).toEqual(['high']);
    queue.close();
  });

  it('keeps every message and its receive count across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fanout-queue-'));
    const first = LocalQueue.open(dir, { visibilityTimeoutMs: 60_000, maxReceiveCount: 5 });
    await first.send([
      { id: 'a', body: 'one' },
      { id: 'b', body: 'two' },
      { id: 'c', body: 'three' },
    ]);
    const [one, two] = await first.receive(2, 0);
    await first.delete(one as NonNullable<typeof one>);
    await first.deadLetter(two as NonNullable<typeof two>, { code: 'AGENT_FAILED', message: 'boom' });
    await first.receive(1, 0); // 'three' is in flight when the process stops
    first.close();

    const again = LocalQueue.open(dir, { visibilityTimeoutMs: 60_000, maxReceiveCount: 5 });
    // The in-flight message is visible again: its consumer died with the old process.
    const records = await again.receive(10, 0);
    expect(records.map((r) => [r.body, r.receiveCount])).toEqual([['three', 2]]);
    expect(again.deadLetters().map((d) => [d.body, d.code])).toEqual([['two', 'AGENT_FAILED']]);
    again.close();
  });

  it('drops a last line torn by a crash, and refuses a journal damaged anywhere else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fanout-journal-'));
    const file = join(dir, 'journal.jsonl');
    const options = { visibilityTimeoutMs: 1000, maxReceiveCount: 3 };
    const q = LocalQueue.open(dir, options);
    await q.send([1, 2, 3].map((n) => ({ id: String(n), body: `job ${n}` })));
    q.close();
    // A crash while appending: the last line has no newline yet.
    appendFileSync(file, '1234abcd {"op":"S","id":"x","bo');
    const reopened = LocalQueue.open(dir, options);
    expect(reopened.pendingBodies().sort()).toEqual(['job 1', 'job 2', 'job 3']);
    reopened.close();
    // A line changed in the middle: refused, and the file left as it was.
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[1] = (lines[1] as string).replace('job 2', 'job 9');
    writeFileSync(file, lines.join('\n'));
    expect(() => LocalQueue.open(dir, options)).toThrow(
      /journal\.jsonl is damaged \(line 2 fails its checksum\)/,
    );
    expect(readFileSync(file, 'utf8')).toBe(lines.join('\n'));
    // Salvaged for a repair: the rest is kept, the damaged file moved aside.
    const salvaged = LocalQueue.open(dir, { ...options, salvage: true });
    expect(salvaged.pendingBodies().sort()).toEqual(['job 1', 'job 3']);
    expect(salvaged.salvagedTo).toMatch(/journal\.jsonl\.damaged-\d+$/);
    salvaged.close();
  });
});
