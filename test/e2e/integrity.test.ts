/**
 * Damaged local state is found before anything runs, said in words with the way out,
 * and never papered over: a torn or emptied queue journal, a lost state database, a
 * state database rolled back under finished jobs.
 */
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fanout } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-integrity-'));
});

const quick = ['--duration', '20ms', '--workers', '2'];
const journal = (stateDir: string) => join(stateDir, 'queue', 'journal.jsonl');
const doneCount = (stateDir: string) => {
  const report = fanout('report', '--state-dir', stateDir, '--json');
  return (JSON.parse(report.stdout) as { totals: { DONE: number } }).totals.DONE;
};
/** Jobs whose agent ran: the simulate agent leaves result.json in each workspace it finished. */
const worked = (stateDir: string, runId: string) =>
  readdirSync(join(stateDir, 'workspaces', 'runs', runId, 'jobs', 'mock', 'backlog')).filter((n) =>
    existsSync(join(stateDir, 'workspaces', 'runs', runId, 'jobs', 'mock', 'backlog', n, 'result.json')),
  ).length;

describe('damaged local state', () => {
  it('refuses a queue journal cut in the middle, names it, and `fanout repair` rebuilds the queue', () => {
    const stateDir = join(dir, 'torn');
    // Two sends, so more than one line (a call's messages are one line; the second send's open
    // rewrites the first's as a line each): the first line is damaged, the last intact.
    for (const mock of ['3', '6']) {
      expect(
        fanout('send', '--local', '--state-dir', stateDir, '--mock', mock, '--run-id', 'torn').code,
      ).toBe(0);
    }
    const lines = readFileSync(journal(stateDir), 'utf8').split('\n');
    expect(lines.filter(Boolean).length).toBeGreaterThan(1);
    lines[0] = (lines[0] as string).slice(0, 40);
    writeFileSync(journal(stateDir), lines.join('\n'));

    const refused = fanout('run', '--state-dir', stateDir, ...quick);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /the queue journal .*journal\.jsonl is damaged \(line 1 fails? its checksum\)/,
    );
    expect(refused.stderr).toMatch(/fanout repair/);
    expect(worked(stateDir, 'torn')).toBe(0);

    const repaired = fanout('repair', '--state-dir', stateDir);
    expect(repaired.stdout).toMatch(/damaged journal was moved to .*journal\.jsonl\.damaged-\d+/);
    expect(repaired.stdout).toMatch(/Run torn: 1 job\(s\) put back on the queue: mock\/backlog#1/);
    expect(fanout('run', '--state-dir', stateDir, ...quick).code).toBe(0);
    expect(doneCount(stateDir)).toBe(6);
  });

  it('refuses an emptied journal while the state table has unfinished jobs, and repairs it', () => {
    const stateDir = join(dir, 'emptied');
    fanout('send', '--local', '--state-dir', stateDir, '--mock', '4', '--run-id', 'emptied');
    writeFileSync(journal(stateDir), '');
    const refused = fanout('run', '--state-dir', stateDir, ...quick);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /4 unfinished job\(s\) of run emptied have no message in the queue journal .* it lost them, so nothing was run\. Rebuild the queue from the state table with `fanout repair`/,
    );
    expect(fanout('repair', '--state-dir', stateDir).stdout).toMatch(/4 job\(s\) put back/);
    expect(fanout('run', '--state-dir', stateDir, ...quick).code).toBe(0);
    expect(doneCount(stateDir)).toBe(4);
  });

  it('never invents a budget: a lost state database is an error that names the run and its budget', () => {
    const stateDir = join(dir, 'lost');
    fanout(
      'send',
      '--local',
      '--state-dir',
      stateDir,
      '--mock',
      '4',
      '--run-id',
      'lost',
      '--budget-usd',
      '0.6',
    );
    rmSync(join(stateDir, 'dynamodb'), { recursive: true });
    const refused = fanout('run', '--state-dir', stateDir, ...quick);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /state table in .*dynamodb has no run lost, which current-run\.json names and 4 queued job\(s\) belong to: it was lost or damaged, so nothing was run[\s\S]*budget of \$0\.60/,
    );
    // Nothing was created in its place.
    expect(fanout('report', '--state-dir', stateDir).stderr).toMatch(/run "lost" does not exist/);
  });

  it('refuses a state database rolled back under jobs that had finished', () => {
    const stateDir = join(dir, 'rolled');
    fanout('send', '--local', '--state-dir', stateDir, '--mock', '3', '--run-id', 'rolled');
    const before = join(dir, 'rolled-db-copy');
    cpSync(join(stateDir, 'dynamodb'), before, { recursive: true });
    expect(fanout('run', '--state-dir', stateDir, ...quick).code).toBe(0);
    // The database goes back to its copy from before the run; the run is unfinished again.
    rmSync(join(stateDir, 'dynamodb'), { recursive: true });
    cpSync(before, join(stateDir, 'dynamodb'), { recursive: true });
    const current = JSON.parse(readFileSync(join(stateDir, 'current-run.json'), 'utf8'));
    writeFileSync(join(stateDir, 'current-run.json'), JSON.stringify({ ...current, finished: false }));
    const refused = fanout('run', '--state-dir', stateDir, ...quick);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /shows 3 job\(s\) of run rolled unfinished that had finished \(mock\/backlog#1 PENDING, was DONE, .*\): it was rolled back, so nothing was run/,
    );
  });
});
