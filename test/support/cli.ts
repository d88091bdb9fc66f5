import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** The report the state dir's current run wrote at its end (runs/<run>/report.json). */
export function savedReport(stateDir: string) {
  const { runId } = JSON.parse(readFileSync(join(stateDir, 'current-run.json'), 'utf8')) as { runId: string };
  return JSON.parse(readFileSync(join(stateDir, 'runs', runId, 'report.json'), 'utf8'));
}

/** DescribeStacks' answer for a fanout stack named Fanout with these outputs (by key). */
export function fanoutStack(outputs: Record<string, string>) {
  return {
    Stacks: [
      {
        StackName: 'Fanout',
        CreationTime: new Date(),
        StackStatus: 'CREATE_COMPLETE' as const,
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      },
    ],
  };
}

/** `fanout run` of the offline llm demo: two mock issues on two workers, in `stateDir`. */
export const demoRun = (stateDir: string, ...more: string[]) =>
  fanout(
    'run',
    '--agent',
    'llm',
    '--model',
    'scripted:demo',
    '--mock-issues',
    '2',
    '--workers',
    '2',
    '--state-dir',
    stateDir,
    ...more,
  );
