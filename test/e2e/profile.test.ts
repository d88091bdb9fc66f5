import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/cli.js';

describe('npm run profile', () => {
  it('profiles the CLI and every worker process, and says where each spent its CPU', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fanout-profile-test-'));
    const result = spawnSync(
      process.execPath,
      ['scripts/profile.mjs', '--jobs', '10', '--workers', '2', '--out', out],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    expect(result.status, result.stderr).toBe(0);
    // One profile for the CLI and one for each worker process.
    expect((await readdir(out)).filter((f) => f.endsWith('.cpuprofile'))).toHaveLength(3);
    expect(result.stdout).toMatch(/^10 jobs of 0 ms on 2 worker\(s\)/);
    expect(result.stdout.match(/^main \(CLI, engines, dispatcher\) pid \d+: .* ms a job$/gm)).toHaveLength(1);
    expect(result.stdout.match(/^worker pid \d+: .* ms a job$/gm)).toHaveLength(2);
    // The engine's work is counted where it happens: dynalite in the CLI's process.
    expect(result.stdout).toContain('dynalite');
  }, 150_000);
});
