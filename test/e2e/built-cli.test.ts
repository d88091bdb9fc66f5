/**
 * The command line as `npm start` runs it: built JavaScript (dist/), no TypeScript runner
 * between the terminal and Node, so one Ctrl-C is one.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT });
});

describe('the built command line', () => {
  it('runs a backlog, and one Ctrl-C to its process group lets running jobs finish', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fanout-built-'));
    const child = spawn(
      process.execPath,
      [
        'dist/fanout.mjs',
        'run',
        '--mock-issues',
        '6',
        '--workers',
        '2',
        '--duration',
        '1500ms',
        '--state-dir',
        stateDir,
      ],
      { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const until = Date.now() + 60_000;
    while ((out.match(/ started /g) ?? []).length < 2 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // As a terminal does: the signal goes to the whole foreground process group, workers included.
    process.kill(-(child.pid as number), 'SIGINT');
    expect(await exited).toBe(130);
    expect(out).toMatch(/Stopping: no new work; running jobs finish/);
    expect(out).not.toMatch(/Returning running jobs/);
    // The two running jobs finished; the four waiting ones were not started.
    expect((out.match(/ DONE mock\/backlog#\d/g) ?? []).length).toBe(2);
    expect(out).toMatch(/done 2 {2}failed 0 {2}skipped 0 {2}pending 4/);
  });
});
