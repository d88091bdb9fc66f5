/**
 * The sandbox's promises, tried from inside it: no credential of the worker reachable, no
 * network, no other room's files, and every limit holding while the worker carries on. They
 * must fail if isolation breaks. Full isolation needs root and namespaces (CI runs as root);
 * where the machine gives less, the tests of what it does not give are skipped, loudly.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessSandbox } from '../../shared/adapters/process-sandbox.js';
import type { SandboxIsolation } from '../../shared/ports/sandbox.js';

const SECRET = 'fanout-sandbox-secret-7c1f';
let state: string;
let home: string;
let sandbox: ProcessSandbox;
let isolation: SandboxIsolation;
let server: Server;
let port: number;

beforeAll(async () => {
  // The worker's secrets, as a worker holds them.
  process.env.GITHUB_TOKEN = `ghp_${SECRET}`;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET;
  process.env.FANOUT_TEST_SET_BY_THE_TEST = SECRET;
  // A state dir and a home as fanout and a user leave them: readable by everyone.
  state = await mkdtemp(join(tmpdir(), 'fanout-state-'));
  home = await mkdtemp(join(tmpdir(), 'fanout-home-'));
  for (const dir of [state, home]) await chmod(dir, 0o755);
  writeFileSync(join(state, 'ledger.json'), SECRET, { mode: 0o644 });
  mkdirSync(join(home, '.aws'), { mode: 0o755 });
  writeFileSync(join(home, '.aws', 'credentials'), `aws_secret_access_key = ${SECRET}`, { mode: 0o644 });
  sandbox = new ProcessSandbox({
    hide: [state, home],
    limits: { processes: 64, outputBytes: 1024 ** 2, fileBytes: 10 * 1024 ** 2, keptBytes: 4096 },
  });
  isolation = await sandbox.isolation();
  if (isolation !== 'full') {
    console.warn(
      `\n*** SANDBOX: this machine gives '${isolation}' isolation, not 'full' (root with namespaces): ` +
        'the file and process tests are skipped here; CI runs them as root. ***\n',
    );
  }
  server = createServer((socket) => socket.end('connected to the worker side'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(() => {
  delete process.env.GITHUB_TOKEN;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  delete process.env.FANOUT_TEST_SET_BY_THE_TEST;
  server?.close();
});

/** Runs one command in a fresh room and removes the room. */
async function runOnce(command: string, timeLimitMs = 10_000) {
  const room = await sandbox.open();
  try {
    return await room.run({ command, timeLimitMs });
  } finally {
    await room.dispose();
  }
}

/** A connection from inside to the worker's loopback, with node (the repository's toolchain). */
const connect = (p: number) =>
  `${process.execPath} -e "require('net').connect(${p}, '127.0.0.1').on('data', (d) => console.log('GOT', String(d))).on('error', (e) => console.log('ERR', e.code))"`;

describe('from inside the sandbox', () => {
  it('sees no variable of the worker: only PATH, HOME, TMPDIR and LANG', async () => {
    const result = await runOnce('env; cat /proc/self/environ');
    expect(result.exitCode).toBe(0);
    expect(result.output).not.toContain(SECRET);
    const names = result.output
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.split('=')[0]);
    expect(new Set(names)).toEqual(new Set(['PATH', 'HOME', 'TMPDIR', 'LANG', 'PWD']));
  });

  it.skipIf(process.getuid?.() !== 0)("cannot read the worker's environment through /proc", async () => {
    if (isolation !== 'full') return;
    const result = await runOnce(`cat /proc/${process.pid}/environ; cat /proc/${process.ppid}/environ`);
    expect(result.exitCode).not.toBe(0);
    expect(result.output).not.toContain(SECRET);
  });

  it("cannot reach a server on the worker's loopback where network isolation is claimed", async () => {
    expect(['full', 'network', 'none']).toContain(isolation);
    // The test's own check that the server answers when nothing isolates.
    const open = await new ProcessSandbox({ atMost: 'none' }).open();
    try {
      expect((await open.run({ command: connect(port) })).output).toContain(
        'GOT connected to the worker side',
      );
    } finally {
      await open.dispose();
    }
    if (isolation === 'none') return;
    const result = await runOnce(connect(port));
    expect(result.output).not.toContain('GOT');
    expect(result.output).toMatch(/ERR (ECONNREFUSED|ENETUNREACH|EACCES)/);
  });

  it("cannot read the state dir, the home (~/.aws) or another room's files", async () => {
    if (isolation !== 'full') return;
    const read = await runOnce(
      `cat ${state}/ledger.json; ls ${state}; cat ${home}/.aws/credentials; ls -a ${home}`,
    );
    expect(read.output).not.toContain(SECRET);
    // Each folder is seen empty: nothing listed, every file missing.
    expect(read.output.split('\n')).not.toContain('ledger.json');
    expect(read.output.split('\n')).not.toContain('.aws');
    expect(read.output).toMatch(/ledger\.json: No such file/);
    // Another job's room, while both exist.
    const a = await sandbox.open();
    const b = await sandbox.open();
    try {
      expect((await a.run({ command: `echo ${SECRET} > mine.txt` })).exitCode).toBe(0);
      const peek = await b.run({
        command: `cat ${a.dir}/mine.txt; ls ${a.dir}; cat /tmp/*/room-*/work/mine.txt`,
      });
      expect(peek.exitCode).not.toBe(0);
      expect(peek.output).not.toContain(SECRET);
      expect(peek.output).toMatch(/Permission denied/);
      // The files a command writes come back to the worker.
      expect(readFileSync(join(a.dir, 'mine.txt'), 'utf8').trim()).toBe(SECRET);
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});

describe('the limits, and the worker carrying on', () => {
  it('stops an endless loop at its time limit', async () => {
    const result = await runOnce('while :; do :; done', 1000);
    expect(result.stoppedBy).toBe('time');
    expect(result.durationMs).toBeLessThan(5000);
  });

  it('stops 1 GB of output at the output limit, keeping its head and tail', async () => {
    const result = await runOnce(
      "echo first-line; head -c 1000000000 /dev/zero | tr '\\0' x; echo last-line",
    );
    expect(result.stoppedBy).toBe('output');
    expect(result.truncated).toBe(true);
    expect(result.outputBytes).toBeLessThan(50 * 1024 ** 2);
    expect(result.output.startsWith('first-line')).toBe(true);
    expect(result.output).toMatch(/\[\.\.\. \d+ bytes left out \.\.\.\]/);
    expect(result.output.length).toBeLessThan(10_000);
  });

  it('stops a huge file at the file-size limit', async () => {
    const room = await sandbox.open();
    try {
      const result = await room.run({ command: 'head -c 100000000 /dev/zero > big; echo wrote $?' });
      expect(statSync(join(room.dir, 'big')).size).toBeLessThanOrEqual(10 * 1024 ** 2);
      expect(result.output).not.toMatch(/wrote 0/);
    } finally {
      await room.dispose();
    }
  });

  it('contains a fork bomb and leaves no process behind', async () => {
    if (isolation !== 'full') return; // as root without a user of its own, RLIMIT_NPROC does not apply
    const room = await sandbox.open();
    try {
      const result = await room.run({ command: 'b() { b | b & }; b; sleep 30', timeLimitMs: 3000 });
      expect(result.durationMs).toBeLessThan(10_000);
      // The room's own user (its files are given to it before each command).
      const uid = statSync(join(room.dir, '..')).uid;
      expect(uid).toBeGreaterThanOrEqual(3_000_000);
      const uidOf = async (pid: string) =>
        /Uid:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      const left = async () => {
        const found: string[] = [];
        for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
          if ((await uidOf(pid).catch(() => undefined)) === String(uid)) found.push(pid);
        }
        return found;
      };
      // The kernel kills what is left of the namespace when its first process dies; give it
      // a moment to finish.
      await expect.poll(left, { timeout: 3000, interval: 100 }).toEqual([]);
    } finally {
      await room.dispose();
    }
    // The worker carries on: the next command runs at once.
    const next = await runOnce('echo still here');
    expect(next).toMatchObject({ exitCode: 0, output: 'still here\n' });
  });
});
