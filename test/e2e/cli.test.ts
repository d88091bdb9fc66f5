import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { demoRun, fanout, ROOT } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fanout-cli-'));
});

describe('fanout command line', () => {
  it('has help for the tool and for run', () => {
    expect(fanout('--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('Commands:') });
    const run = fanout('run', '--help');
    expect(run.code).toBe(0);
    for (const flag of [
      '--workers',
      '--mock-issues',
      '--issues-file',
      '--budget-usd',
      '--timeout',
      '--state-dir',
      '--duration',
      '--fail-rate',
      '--cost-usd',
      '--seed',
    ]) {
      expect(run.stdout).toContain(flag);
    }
  });

  it.each([
    [['--workers', '0'], /--workers must be a whole number from 1 to 1000, not "0"/],
    [['--budget-usd', '-1'], /--budget-usd must be a number from 0 to/],
    [['--duration', 'soon'], /--duration: "soon" is not a duration/],
    [['--fail-rate', '2'], /--fail-rate must be a number from 0 to 1/],
    [['--wrokers', '3'], /Unknown option '--wrokers'/],
    [['--run-id', '../../x'], /--run-id must be 1-64 letters, digits, _ or -, not "..\/..\/x"/],
    // 1,000 worker processes of about 150 MB do not fit in this machine's memory (24 GB).
    [
      ['--workers', '1000'],
      /--workers 1000 needs about 146\.5 GB \(about 150 MB a worker process\) .* use --workers \d+ or fewer/,
    ],
  ])('refuses %j with a clear error, exit 2, and writes nothing', (args, message) => {
    const stateDir = join(dir, `bad-${args[0]}`);
    const result = fanout('run', '--mock-issues', '2', '--state-dir', stateDir, ...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('refuses a malformed issues file, naming each bad line, before anything is written', () => {
    const file = join(dir, 'issues.jsonl');
    const good = (n: number) => JSON.stringify({ repo: 'acme/api', number: n, title: `t${n}` });
    writeFileSync(
      file,
      [1, 2, 3, 4, 5, 6]
        .map(good)
        .concat(['{oops', good(2)])
        .join('\n'),
    );
    const stateDir = join(dir, 'malformed');
    const result = fanout('run', '--issues-file', file, '--state-dir', stateDir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 7: bad JSON/);
    expect(result.stderr).toMatch(/line 8: duplicate issue acme\/api#2/);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('says in words why a state dir cannot be used: a file, a file on the way, /proc', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a folder');
    for (const [stateDir, why] of [
      [file, /it is a file, not a folder/],
      [join(file, 'state'), /a-file is a file, not a folder/],
      ['/proc/fanout-state', /\/proc is on a file system the kernel makes up/],
    ] as const) {
      const result = fanout('run', '--mock-issues', '1', '--state-dir', stateDir);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(why);
      expect(result.stderr).toMatch(/Choose another with --state-dir/);
    }
  });

  it('runs a small backlog with plain lines when stdout is not a terminal, and reports', () => {
    const result = fanout(
      'run',
      '--workers',
      '2',
      '--mock-issues',
      '3',
      '--duration',
      '50ms',
      '--state-dir',
      join(dir, 'ok'),
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/worker-0[12] started mock\/backlog#1/);
    expect(result.stdout).toMatch(/worker-0[12] DONE mock\/backlog#3/);
    expect(result.stdout).toMatch(/done 3 {2}failed 0 {2}skipped 0/);
    expect(result.stdout).toMatch(/efficiency \d+\.\d% of the ideal makespan/);
  });

  it('runs the llm agent offline on the scripted demo model, with its cost per job (--sandbox none: it runs nothing)', () => {
    const stateDir = join(dir, 'llm');
    const result = demoRun(stateDir, '--sandbox', 'none');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/worker-0[12] DONE mock\/backlog#1 \d+ms \$0\.0093/);
    expect(result.stdout).toMatch(/done 2 {2}failed 0/);
    const run = JSON.parse(readFileSync(join(stateDir, 'current-run.json'), 'utf8')).runId;
    const patch = readFileSync(
      join(stateDir, 'workspaces/runs', run, 'jobs/mock/backlog/2/agent/diff.patch'),
      'utf8',
    );
    expect(patch).toContain("+export const greet = (name: string) => 'Hello, ' + name;");
  });

  it("by default the demo runs in the sandbox (auto): names the isolation, runs the demo repository's failing test before and after, and ends each job verified", () => {
    const stateDir = join(dir, 'llm-sandbox');
    const result = demoRun(stateDir);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Sandbox \(--sandbox auto\): (full|network|no) isolation/m);
    expect(result.stdout).toMatch(/mock\/backlog#1 +DONE \(verified\)/);
    expect(result.stdout).toMatch(/mock\/backlog#2 +DONE \(verified\)/);
    // The report carries each job's test summary, review, tokens and sandbox time.
    expect(result.stdout).toMatch(
      /mock\/backlog#1 {2}verified: npm test: exit 1 before, exit 0 after; approved; 6 model calls \([\d,]+ tokens in, [\d,]+ out\), sandbox [\d.]+m?s/,
    );
    const run = JSON.parse(readFileSync(join(stateDir, 'current-run.json'), 'utf8')).runId;
    const verification = JSON.parse(
      readFileSync(
        join(stateDir, 'workspaces/runs', run, 'jobs/mock/backlog/1/agent/verification.json'),
        'utf8',
      ),
    );
    expect(verification).toMatchObject({
      verdict: 'verified',
      baseline: { command: 'npm test', exitCode: 1, tail: expect.stringContaining('not ok 1') },
      after: { command: 'npm test', exitCode: 0, tail: expect.stringContaining('ok 1') },
      reviews: [{ decision: 'approve' }],
    });
  });

  it('refuses a model the price table does not know, before anything starts', () => {
    const stateDir = join(dir, 'llm2');
    const result = fanout(
      'run',
      '--agent',
      'llm',
      '--model',
      'acme.unknown-model-v1',
      '--mock-issues',
      '1',
      '--state-dir',
      stateDir,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/no price for model "acme.unknown-model-v1" in the price table/);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('says which command has no help, prints its version, and refuses a timeout that leaves no time to work', () => {
    expect(fanout('help', 'nonexistent')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/no command "nonexistent"/),
    });
    expect(fanout('--version').stdout).toMatch(/^fanout \d+\.\d+\.\d+/);
    const stateDir = join(dir, 'short-timeout');
    const result = fanout('run', '--mock-issues', '1', '--state-dir', stateDir, '--timeout', '1s');
    expect(result).toMatchObject({ code: 2, stderr: expect.stringMatching(/--timeout must be at least 2s/) });
    expect(existsSync(stateDir)).toBe(false);
  });

  it('says there is nothing to do, and creates nothing, when there is neither a backlog nor a run to resume', () => {
    const stateDir = join(dir, 'nothing');
    const result = fanout('run', '--state-dir', stateDir);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Nothing to do: no issues given .* and no unfinished run in .* to resume/);
    expect(existsSync(stateDir)).toBe(false);
  });

  it('warns before starting when the budget cannot cover one job', () => {
    const stateDir = join(dir, 'poor');
    const result = fanout(
      'run',
      '--mock-issues',
      '1',
      '--state-dir',
      stateDir,
      '--budget-usd',
      '0.01',
      '--cost-usd',
      '0.05',
      '--duration',
      '10ms',
    );
    expect(result.stdout).toMatch(
      /Warning: the budget \(\$0\.01\) is below one job's worst case \(\$0\.05\)/,
    );
    expect(result.stdout).toMatch(/SKIPPED \(BUDGET_EXHAUSTED\)/);
  });

  it('tells a second fanout run on the same state dir what holds it and what to do instead', async () => {
    const stateDir = join(dir, 'locked');
    const first = spawnFanout('run', '--mock-issues', '2', '--duration', '20s', '--state-dir', stateDir);
    try {
      await waitFor(() => existsSync(join(stateDir, 'live.json')));
      const second = fanout('run', '--state-dir', stateDir, '--mock-issues', '1');
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(
        /state dir .* is in use by `fanout run` \(pid \d+, since .*\)\. While it runs, `fanout send --local`, `status` and `report` go through it/,
      );
    } finally {
      first.kill('SIGKILL');
    }
  });

  it('status --watch ends cleanly with the last state when the run it watches ends', async () => {
    const stateDir = join(dir, 'watched');
    const run = spawnFanout('run', '--mock-issues', '2', '--duration', '2s', '--state-dir', stateDir);
    let runErr = '';
    run.stderr.on('data', (chunk: Buffer) => {
      runErr += chunk.toString();
    });
    const runExit = new Promise<number | null>((resolve) => run.on('exit', resolve));
    try {
      await waitFor(() => existsSync(join(stateDir, 'live.json')));
      const watch = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'cli/fanout.ts',
          'status',
          '--local',
          '--state-dir',
          stateDir,
          '--watch',
          '--interval',
          '200ms',
        ],
        { cwd: ROOT },
      );
      let stdout = '';
      let stderr = '';
      watch.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      watch.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const watchExit = await new Promise<number | null>((resolve) => watch.on('exit', resolve));
      expect({ code: await runExit, stderr: runErr }).toEqual({ code: 0, stderr: '' });
      expect(stderr).toBe('');
      expect(watchExit).toBe(0);
      expect(stdout).toMatch(/The fanout run has ended\. Its last state:/);
      expect(stdout.slice(stdout.lastIndexOf('The fanout run has ended'))).toMatch(/\(finished\)/);
    } finally {
      run.kill('SIGKILL');
    }
  });
});

/** The command line in the background, its stderr readable. */
const spawnFanout = (...args: string[]) =>
  spawn(process.execPath, ['--import', 'tsx', 'cli/fanout.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });

async function waitFor(condition: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
