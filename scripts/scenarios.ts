/**
 * `npm run scenarios`: runs the fault scenarios (test/scenarios) and prints one line
 * per scenario with its figure. A broken invariant fails its scenario and the command.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const out = join(mkdtempSync(join(tmpdir(), 'fanout-scenarios-')), 'results.txt');
const result = spawnSync('npx', ['vitest', 'run', 'test/scenarios', '--reporter=dot'], {
  stdio: 'inherit',
  env: { ...process.env, FANOUT_SCENARIO_OUT: out },
});
let lines: string[] = [];
try {
  lines = readFileSync(out, 'utf8').trim().split('\n');
} catch {
  // no scenario reached its figure
}
const sorted = lines.sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
console.log(`\n${'scenario'.padEnd(28)} figure\n${'-'.repeat(28)} ${'-'.repeat(60)}\n${sorted.join('\n')}`);
process.exitCode = result.status ?? 1;
