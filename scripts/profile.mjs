// Profiles every process of a local run (issue #14): the command line (which runs the
// embedded engines and the dispatcher) and each worker process, with V8's --cpu-prof
// (NODE_OPTIONS refuses it, so it is passed on the command line and, for the workers,
// through FANOUT_CPU_PROF_DIR, which the dispatcher adds to their execArgv). Runs the
// built JavaScript, as `npm start` does, and prints where each process spent its CPU.
//
//   npm run profile -- [--jobs N] [--workers N] [--out DIR]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { jobs: { type: 'string' }, workers: { type: 'string' }, out: { type: 'string' } },
});
const jobs = Number(values.jobs ?? 200);
const workers = Number(values.workers ?? 1);
const out = values.out ?? mkdtempSync(join(tmpdir(), 'fanout-profile-'));
mkdirSync(out, { recursive: true });
for (const file of readdirSync(out)) if (file.endsWith('.cpuprofile')) rmSync(join(out, file));

const build = spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const stateDir = mkdtempSync(join(tmpdir(), 'fanout-profile-state-'));
const started = Date.now();
const run = spawnSync(
  process.execPath,
  [
    '--cpu-prof',
    `--cpu-prof-dir=${out}`,
    'dist/fanout.mjs',
    'run',
    '--mock-issues',
    String(jobs),
    '--duration',
    '0ms',
    '--workers',
    String(workers),
    '--state-dir',
    stateDir,
  ],
  { env: { ...process.env, FANOUT_CPU_PROF_DIR: out }, encoding: 'utf8' },
);
const wallMs = Date.now() - started;
rmSync(stateDir, { recursive: true, force: true });
if (run.status !== 0) {
  process.stderr.write(run.stdout + run.stderr);
  process.exit(run.status ?? 1);
}

/** The bundles' source maps: a sample in dist/ is counted where its source came from. */
const maps = new Map();
function original(url, line, column) {
  const file = url.startsWith('file://') ? new URL(url).pathname : url;
  if (!file.includes('/dist/')) return url;
  if (!maps.has(file))
    maps.set(
      file,
      existsSync(`${file}.map`) ? new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8'))) : undefined,
    );
  const entry = maps.get(file)?.findEntry(line, column);
  return entry?.originalSource ?? url;
}

/** Where a sampled function lives: a package, node's own code, or this project. */
function bucket(frame) {
  const url = frame.url && original(frame.url, frame.lineNumber, frame.columnNumber);
  if (!url) return '(native or V8)';
  if (url.startsWith('node:')) return 'node internals';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '?');
  }
  const project = url.match(/\/(shared|cli)\/(\w+)/);
  return project ? `fanout ${project[1]}/${project[2]}` : url;
}

const lines = [];
const profiles = readdirSync(out).filter((file) => file.endsWith('.cpuprofile'));
for (const file of profiles) {
  const profile = JSON.parse(readFileSync(join(out, file), 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const us = deltas[i + 1] ?? 0;
    const name = node.callFrame.functionName;
    const key =
      name === '(idle)' || name === '(garbage collector)' || name === '(program)'
        ? name
        : bucket(node.callFrame);
    selfUs.set(key, (selfUs.get(key) ?? 0) + us);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const busy = total - (selfUs.get('(idle)') ?? 0);
  const pid = file.split('.')[3]; // CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile
  const role = pid === String(run.pid) ? 'main (CLI, engines, dispatcher)' : 'worker';
  lines.push(
    `${role} pid ${pid}: ${(total / 1000).toFixed(0)} ms profiled, ${(busy / 1000).toFixed(0)} ms on CPU, ` +
      `${(busy / 1000 / jobs).toFixed(2)} ms a job`,
  );
  for (const [key, us] of [...selfUs].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
    if (key === '(idle)') continue;
    lines.push(
      `    ${((100 * us) / Math.max(1, busy)).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`,
    );
  }
}
process.stdout.write(
  `${jobs} jobs of 0 ms on ${workers} worker(s): ${wallMs} ms wall, ${(wallMs / jobs).toFixed(1)} ms a job ` +
    `(including the start); profiles in ${out}\n${lines.join('\n')}\n`,
);
