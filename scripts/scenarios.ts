/**
 * `npm run scenarios [-- --repeat N --seed S]`: runs the fault scenarios (test/scenarios) and prints one line
 * per scenario with its figure. A broken invariant fails its scenario and the command.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { repeat: { type: 'string' }, seed: { type: 'string' } },
  strict: true,
});
const repeat = Number(values.repeat ?? 1);
const seed = Number(values.seed ?? 0);
if (!Number.isInteger(repeat) || repeat < 1 || !Number.isInteger(seed) || seed < 0) {
  console.error('usage: npm run scenarios -- [--repeat N (>= 1)] [--seed S (>= 0)]');
  process.exit(2);
}
const out = join(mkdtempSync(join(tmpdir(), 'fanout-scenarios-')), 'results.txt');
// Each run of a scenario differs in its timing and in its seed (the base seed, plus the run's number).
const result = spawnSync('npx', ['vitest', 'run', 'test/scenarios', '--reporter=dot'], {
  stdio: 'inherit',
  env: {
    ...process.env,
    FANOUT_SCENARIO_OUT: out,
    FANOUT_SCENARIO_REPEAT: String(repeat),
    FANOUT_SCENARIO_SEED: String(seed),
  },
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
