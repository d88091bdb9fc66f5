import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../..');

/** Runs the fanout command line from the sources, as a user would, and returns what it said. */
export function fanout(...args: string[]) {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'cli/fanout.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
