import type { ScriptedTurn } from '../adapters/scripted-model.js';
import { REPO_DIR, type Workspace } from '../ports/workspace.js';

/**
 * The offline demo: mock repositories (mock/*) have this small snapshot, and the
 * model `scripted:demo` works on it as a real model would, through the same tools,
 * reservations and checkpoints, so `fanout run --agent llm --model scripted:demo`
 * shows the whole agent path without an account or a network.
 */
export const DEMO_SNAPSHOT: Record<string, string> = {
  'README.md': '# backlog\n\nA small service.\n',
  'src/greet.ts': "export const greet = (name: string) => 'Helo, ' + name;\n",
  // A test that fails until the typo is fixed: what a sandboxed run verifies the patch with.
  'package.json': `${JSON.stringify({ name: 'backlog', private: true, scripts: { test: 'node test/greet.test.mjs' } }, null, 2)}\n`,
  'test/greet.test.mjs': [
    "import { readFileSync } from 'node:fs';",
    "const source = readFileSync(new URL('../src/greet.ts', import.meta.url), 'utf8');",
    'if (!source.includes("\'Hello, \'")) {',
    "  console.log('not ok 1 - greet says Hello');",
    '  process.exit(1);',
    '}',
    "console.log('ok 1 - greet says Hello');",
    '',
  ].join('\n'),
};

export async function seedDemoSnapshot(workspace: Workspace): Promise<void> {
  for (const [path, content] of Object.entries(DEMO_SNAPSHOT))
    await workspace.write(`${REPO_DIR}/${path}`, content);
}

const use = (
  toolUseId: string,
  name: string,
  input: Record<string, unknown>,
  text?: string,
): ScriptedTurn => ({
  content: [...(text ? [{ text }] : []), { toolUse: { toolUseId, name, input } }],
});

export const DEMO_SCRIPT: readonly ScriptedTurn[] = [
  use('demo-1', 'search', { text: 'Helo' }, 'Looking for the typo the issue describes.'),
  use('demo-2', 'read_file', { path: 'src/greet.ts' }),
  use('demo-3', 'edit_file', { path: 'src/greet.ts', oldText: "'Helo, '", newText: "'Hello, '" }),
  use('demo-4', 'finish', { summary: 'Fix the greeting: "Helo" -> "Hello".' }),
];

/** The demo with a sandbox: the tests run (and fail), the fix, the tests again (and pass). */
export const DEMO_SCRIPT_WITH_TESTS: readonly ScriptedTurn[] = [
  use('demo-1', 'run_command', { command: 'npm test' }, 'Running the tests first.'),
  use('demo-2', 'search', { text: 'Helo' }),
  use('demo-3', 'edit_file', { path: 'src/greet.ts', oldText: "'Helo, '", newText: "'Hello, '" }),
  use('demo-4', 'run_command', { command: 'npm test' }),
  use('demo-5', 'finish', { summary: 'Fix the greeting: "Helo" -> "Hello"; the test passes.' }),
];

/** The demo's reviewer: it reads the diff and the tests and approves. */
export const DEMO_REVIEW_SCRIPT: readonly ScriptedTurn[] = [
  use('review-1', 'review', {
    decision: 'approve',
    reasons: 'The change fixes the typo the issue reports and nothing else; the test that failed now passes.',
  }),
];
