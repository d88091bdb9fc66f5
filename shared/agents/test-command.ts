/**
 * The command that runs a repository's tests, from the files that name one, in this order:
 * package.json with a test script, pyproject.toml, a Makefile with a `test` target,
 * go.mod, Cargo.toml. Undefined when none does (a run may name one: `--test-command`).
 */
export async function detectTestCommand(
  read: (path: string) => Promise<string | undefined>,
): Promise<string | undefined> {
  const pkg = await read('package.json');
  if (pkg !== undefined) {
    try {
      const test = (JSON.parse(pkg) as { scripts?: { test?: unknown } }).scripts?.test;
      // npm's placeholder for "no tests" fails on purpose: it is not a test suite.
      if (typeof test === 'string' && !/no test specified/.test(test)) return 'npm test';
    } catch {
      // not JSON: not a package to test
    }
  }
  if ((await read('pyproject.toml')) !== undefined) return 'python3 -m pytest -q';
  const makefile = await read('Makefile');
  if (makefile !== undefined && /^test\s*:/m.test(makefile)) return 'make test';
  if ((await read('go.mod')) !== undefined) return 'go test ./...';
  if ((await read('Cargo.toml')) !== undefined) return 'cargo test';
  return undefined;
}

export interface TestRun {
  readonly command: string;
  readonly exitCode: number | null;
  /** Set when the sandbox stopped it (time or output). */
  readonly stoppedBy?: string;
  readonly durationMs: number;
  /** The end of its output: where test runners print their summary. */
  readonly tail: string;
}

/** What the tests alone say of a change (the reviewer may still reject it). */
export type TestVerdict = 'verified' | 'unverified';

/**
 * What the tests say of a change, from their runs before it (the baseline) and after:
 * verified when they failed before and pass after; unverified otherwise, with why.
 */
export function judge(
  baseline: TestRun | undefined,
  after: TestRun | undefined,
): { verdict: TestVerdict; reason: string } {
  if (!baseline || !after) return { verdict: 'unverified', reason: 'no test command was found or given' };
  const passed = (run: TestRun) => run.exitCode === 0 && !run.stoppedBy;
  if (!passed(after))
    return { verdict: 'unverified', reason: `the tests fail after the change (${after.command})` };
  if (passed(baseline))
    return {
      verdict: 'unverified',
      reason: 'the tests passed before the change too: nothing shows the issue fixed',
    };
  return { verdict: 'verified', reason: 'the tests failed before the change and pass after it' };
}
