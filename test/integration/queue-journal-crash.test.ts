import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOURNAL_FILE, LocalQueue } from '../../shared/adapters/local-queue.js';
import type { QueueRecord } from '../../shared/ports/queue.js';

/**
 * The local queue's guarantee (README, "The queue journal"): a queue call that has
 * returned is in the journal, written before its effect is visible; a process killed at
 * any moment loses at most the call it was in, and that call is either whole in the
 * journal or not at all. These tests kill it at every point of the journal's bytes, and
 * for real, with SIGKILL.
 */

interface Observed {
  readonly pending: readonly string[];
  readonly dead: readonly string[];
}

/** What a queue reopened from a journal shows: messages with their receive counts, dead letters with theirs. */
async function observe(dir: string): Promise<Observed> {
  // A high maxReceiveCount, so that receiving to read the counts dead-letters nothing.
  const queue = LocalQueue.open(dir, { visibilityTimeoutMs: 600_000, maxReceiveCount: 1000 });
  try {
    const records = await queue.receive(1_000_000, 0);
    return {
      pending: records.map((r) => `${r.body}@${r.receiveCount - 1}`).sort(),
      dead: queue
        .deadLetters()
        .map((d) => `${d.body}@${d.receiveCount}:${d.code}`)
        .sort(),
    };
  } finally {
    queue.close();
  }
}

describe('the queue journal under a crash', () => {
  it('loses nothing that returned and applies no call in part, wherever in the journal the process dies', async () => {
    const root = await mkdtemp(join(tmpdir(), 'fanout-journal-'));
    const liveDir = join(root, 'live');
    let now = 1_000_000;
    const live = LocalQueue.open(liveDir, {
      visibilityTimeoutMs: 30_000,
      maxReceiveCount: 3,
      clock: () => now,
    });
    const journal = join(liveDir, JOURNAL_FILE);
    const receives = new Map<string, number>();
    const byBody = new Map<string, QueueRecord>();
    const take = async (max: number) => {
      for (const record of await live.receive(max, 0)) {
        receives.set(record.body, record.receiveCount);
        byBody.set(record.body, record);
      }
    };
    /** After each call: the journal's length and what a reopened queue must show from then on. */
    const points: { bytes: number; expected: Observed }[] = [];
    const mark = () => {
      points.push({
        bytes: statSync(journal).size,
        expected: {
          pending: live
            .pendingBodies()
            .map((body) => `${body}@${receives.get(body) ?? 0}`)
            .sort(),
          dead: live
            .deadLetters()
            .map((d) => `${d.body}@${d.receiveCount}:${d.code}`)
            .sort(),
        },
      });
    };
    mark();
    const steps: (() => Promise<unknown>)[] = [
      () => live.send(['a', 'b', 'c'].map((body) => ({ id: body, body }))),
      () => live.send([{ id: 'd', body: 'd' }]),
      () => take(2),
      () => live.delete(byBody.get('a') as QueueRecord),
      () => take(10),
      () => live.deadLetter(byBody.get('c') as QueueRecord, { code: 'AGENT_FAILED', message: 'it failed' }),
      async () => {
        now += 30_000;
        await take(10); // b and d, their second receives
      },
      async () => {
        now += 30_000;
        await take(10); // their third
      },
      () => live.delete(byBody.get('d') as QueueRecord),
      async () => {
        now += 30_000; // b has had its 3 receives: this receive dead-letters it
        await take(10);
      },
      async () => {
        live.redrive([...live.deadLetters()].filter((d) => d.body === 'c').map((d) => d.id));
        receives.set('c', 0);
      },
      () => live.send([{ id: 'e', body: `e${'x'.repeat(300)}` }]),
      () => take(10),
    ];
    for (const step of steps) {
      await step();
      mark();
    }
    live.close();
    const bytes = readFileSync(journal);
    expect(points.at(-1)?.bytes).toBe(bytes.length);
    // The run covered what it should: a delete, a dead letter by reason and by receive count, a redrive.
    expect(points.at(-1)?.expected.dead).toEqual(['b@3:MAX_RECEIVES_EXCEEDED']);

    const crashDir = join(root, 'crash');
    let checked = 0;
    for (let length = 0; length <= bytes.length; length++) {
      // The journal as a process killed after writing `length` bytes leaves it.
      rmSync(crashDir, { recursive: true, force: true });
      mkdirSync(crashDir);
      writeFileSync(join(crashDir, JOURNAL_FILE), bytes.subarray(0, length));
      // The last call whose line is there (all of it but, perhaps, its newline) is the state to
      // find; a later call is absent, and no call is there in part.
      const expected = points.filter((p) => p.bytes - 1 <= length).at(-1)?.expected;
      expect(await observe(crashDir), `killed after ${length} of ${bytes.length} bytes`).toEqual(expected);
      checked++;
    }
    expect(checked).toBe(bytes.length + 1);
    rmSync(root, { recursive: true, force: true });
  });

  it('keeps every call a process killed with SIGKILL had returned from', async () => {
    const root = await mkdtemp(join(tmpdir(), 'fanout-journal-kill-'));
    for (const afterMs of [150, 400, 900]) {
      const dir = join(root, String(afterMs));
      const child = spawn(
        process.execPath,
        [
          '--import',
          import.meta.resolve('tsx'),
          new URL('../support/queue-writer.ts', import.meta.url).pathname,
          dir,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      // Start timing once it is writing, then kill it mid-stream.
      await new Promise<void>((resolve) => {
        const wait = () => (out.includes('sent m0') ? resolve() : setTimeout(wait, 10));
        wait();
      });
      await new Promise((resolve) => setTimeout(resolve, afterMs));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      // The text after the last newline is a line the kill cut: not an acknowledgement.
      const complete = out.split('\n').slice(0, -1);
      const sent = complete.filter((line) => line.startsWith('sent ')).map((line) => line.slice(5));
      const deleted = new Set(
        complete.filter((line) => line.startsWith('deleted ')).map((line) => line.slice(8)),
      );
      expect(sent.length).toBeGreaterThan(10);

      copyFileSync(join(dir, JOURNAL_FILE), join(root, `journal-${afterMs}.jsonl`));
      const found = await observe(dir);
      const pending = new Set(found.pending.map((entry) => entry.slice(0, entry.indexOf('@'))));
      // Every message whose send returned is there, and none whose delete returned...
      for (const body of deleted) expect(pending.has(body), body).toBe(false);
      const missing = sent.filter((body) => !pending.has(body) && !deleted.has(body));
      // ...except that the call in flight may have reached the journal: one more message
      // (its send), or one fewer (its delete), never more than that one call.
      const unacknowledged = [...pending].filter((body) => !sent.includes(body));
      expect(
        missing.length + unacknowledged.length,
        `missing ${missing}, extra ${unacknowledged}`,
      ).toBeLessThanOrEqual(1);
      expect(found.dead).toEqual([]);
    }
    rmSync(root, { recursive: true, force: true });
  }, 60_000);
});
