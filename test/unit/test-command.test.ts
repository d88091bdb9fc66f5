import { describe, expect, it } from 'vitest';
import { detectTestCommand, judge, type TestRun } from '../../shared/agents/test-command.js';

const repo = (files: Record<string, string>) => async (path: string) => files[path];
const run = (exitCode: number | null, stoppedBy?: string): TestRun => ({
  command: 'npm test',
  exitCode,
  ...(stoppedBy ? { stoppedBy } : {}),
  durationMs: 1,
  tail: '',
});

describe("a repository's test command", () => {
  it('comes from the first file that names one', async () => {
    expect(
      await detectTestCommand(repo({ 'package.json': '{"scripts":{"test":"vitest run"}}', 'go.mod': '' })),
    ).toBe('npm test');
    // npm's placeholder is not a test suite; a package without scripts neither.
    expect(
      await detectTestCommand(
        repo({ 'package.json': '{"scripts":{"test":"echo \\"Error: no test specified\\" && exit 1"}}' }),
      ),
    ).toBeUndefined();
    expect(await detectTestCommand(repo({ 'package.json': 'not json', 'pyproject.toml': '' }))).toBe(
      'python3 -m pytest -q',
    );
    expect(await detectTestCommand(repo({ Makefile: 'build:\n\tcc x.c\ntest: build\n\t./t\n' }))).toBe(
      'make test',
    );
    expect(await detectTestCommand(repo({ Makefile: 'build:\n\tcc x.c\n' }))).toBeUndefined();
    expect(await detectTestCommand(repo({ 'go.mod': 'module x' }))).toBe('go test ./...');
    expect(await detectTestCommand(repo({ 'Cargo.toml': '[package]' }))).toBe('cargo test');
    expect(await detectTestCommand(repo({ 'README.md': '# x' }))).toBeUndefined();
  });
});

describe('the verdict of the tests', () => {
  it('is verified only when they failed before the change and pass after it', () => {
    expect(judge(run(1), run(0)).verdict).toBe('verified');
    expect(judge(run(0), run(0))).toEqual({
      verdict: 'unverified',
      reason: 'the tests passed before the change too: nothing shows the issue fixed',
    });
    expect(judge(run(1), run(1)).reason).toMatch(/fail after the change/);
    // Stopped at its time limit is not a pass, whatever its exit.
    expect(judge(run(null, 'time'), run(0, 'time')).verdict).toBe('unverified');
    expect(judge(undefined, undefined).reason).toMatch(/no test command/);
  });
});
