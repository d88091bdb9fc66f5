/**
 * `fanout bench`'s local-speed section (issue #14): the built command line, as `npm start`
 * runs it, timed from outside. Each run is a child process in a fresh state dir; the
 * figures come from its report, from the moment its first job starts (its first
 * "started" line), and from its worker processes' memory as Linux accounts it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../shared/domain/report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'fanout.mjs');

/** Figures from before #14 (the measurements, `fanout run`, 2 runs each) and the seed's. */
export const EFFICIENCY_BEFORE: Record<number, string> = {
  1: '96.1-96.2%',
  2: '94.6-94.7%',
  3: '94.9-95.4%',
  5: '86.3-87.1%',
  10: '74.6-75.1%',
};
export const EFFICIENCY_SEED: Record<number, string> = { 1: '97.1%', 2: '95.1%', 3: '95.2%', 5: '88.5%' };
export const EFFICIENCY_TARGET: Record<number, string> = {
  1: '99.5%',
  2: '99%',
  3: '99%',
  5: '98%',
  10: '95%',
};
export const BEFORE = {
  zeroJobsPerSecondOneWorker: 38, // 200 jobs in 5.3 s (the issue)
  cliStartSeconds: '3-4',
  hundredWorkersStartSeconds: 100, // 1 m 40 s (the issue)
};

export interface BuiltRun {
  readonly report: RunReport;
  /** From starting the command to its first job's "started" line. */
  readonly firstStartedMs: number;
  /** Per worker process, the most it held at any sample: private (unshared) memory and RSS, in MB. */
  readonly workerMemory: { readonly privateMb: number; readonly rssMb: number }[];
}

/** Private_Dirty and Rss of a process from /proc (Linux); undefined elsewhere or once it has gone. */
function memoryOf(pid: number): { privateKb: number; rssKb: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? 0);
    return { privateKb: field('Private_Dirty'), rssKb: field('Rss') };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  if (!existsSync('/proc')) return [];
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the second field after the command's closing parenthesis.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** Builds dist/ as `npm start` does, so the section measures what a user runs. */
export function buildCli(): void {
  const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('scripts/build.mjs failed');
}

/**
 * One `fanout run` of the built command line, measured. With `sampleMemory`, its worker
 * processes' memory is read once a second from their first job on: reading a process's
 * smaps costs the kernel about a millisecond, so the start and any throughput measured
 * in the same run would pay for it.
 */
export async function runBuilt(
  args: readonly string[],
  options: { readonly sampleMemory?: boolean; readonly cli?: string } = {},
): Promise<BuiltRun> {
  const stateDir = await mkdtemp(join(tmpdir(), 'fanout-bench-built-'));
  const started = performance.now();
  // A budget no run here reaches: a run that met its budget would skip jobs and measure that instead.
  const command = [options.cli ?? CLI, 'run', ...args, '--budget-usd', '100000', '--state-dir', stateDir];
  const child = spawn(process.execPath, command, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  let out = '';
  let err = '';
  let firstStartedMs: number | undefined;
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (firstStartedMs === undefined && / started /.test(out)) firstStartedMs = performance.now() - started;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const peak = new Map<number, { privateKb: number; rssKb: number }>();
  const sampler = setInterval(() => {
    if (!options.sampleMemory || firstStartedMs === undefined) return;
    for (const pid of childrenOf(child.pid ?? -1)) {
      const now = memoryOf(pid);
      if (!now) continue;
      const before = peak.get(pid) ?? { privateKb: 0, rssKb: 0 };
      peak.set(pid, {
        privateKb: Math.max(before.privateKb, now.privateKb),
        rssKb: Math.max(before.rssKb, now.rssKb),
      });
    }
  }, 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  try {
    const written = out.match(/Report written to (\S+)/)?.[1];
    if (code !== 0 || !written)
      throw new Error(`fanout run ${args.join(' ')} failed (${code}): ${err || out}`);
    return {
      report: JSON.parse(readFileSync(written, 'utf8')) as RunReport,
      firstStartedMs: firstStartedMs ?? Number.NaN,
      workerMemory: [...peak.values()].map((m) => ({ privateMb: m.privateKb / 1024, rssMb: m.rssKb / 1024 })),
    };
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
}

/** The value below which p percent of the values lie (nearest rank); 0 for no values. */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
};
