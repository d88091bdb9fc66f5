import { FanoutError } from '../domain/errors.js';
import { safeRelativePath } from '../domain/workspace-path.js';
import type { ToolSpec } from '../ports/model.js';
import { REPO_DIR, type Workspace } from '../ports/workspace.js';
import type { SandboxCopy } from './sandbox-copy.js';

/** The repository snapshot lives in the job's workspace under this folder. */

const text = (bytes: Uint8Array | undefined) =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');

/**
 * The agent's only reach: list, read, search, write and edit files of the snapshot in
 * its own workspace, and finish. Nothing runs; every path is checked (invariant 6).
 */
export const TOOL_SPECS: readonly ToolSpec[] = [
  {
    name: 'list_files',
    description: 'List the files of the repository, optionally under a folder.',
    inputSchema: { type: 'object', properties: { path: { type: 'string' } } },
  },
  {
    name: 'read_file',
    description: 'Read a file, optionally lines startLine..endLine (1-based), with line numbers.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' }, startLine: { type: 'integer' }, endLine: { type: 'integer' } },
      required: ['path'],
    },
  },
  {
    name: 'search',
    description: 'Find lines containing a text, in every file or under a folder.',
    inputSchema: {
      type: 'object',
      properties: { text: { type: 'string' }, path: { type: 'string' } },
      required: ['text'],
    },
  },
  {
    name: 'write_file',
    description: 'Create or replace a file with the given content.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' }, content: { type: 'string' } },
      required: ['path', 'content'],
    },
  },
  {
    name: 'edit_file',
    description: 'Replace the one occurrence of oldText in a file with newText.',
    inputSchema: {
      type: 'object',
      properties: { path: { type: 'string' }, oldText: { type: 'string' }, newText: { type: 'string' } },
      required: ['path', 'oldText', 'newText'],
    },
  },
  {
    name: 'finish',
    description: 'Stop: the change is complete. Give a summary for the pull request.',
    inputSchema: { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'] },
  },
];

/** Offered only when the agent has a sandbox: it runs a command on a copy of the repository. */
export const RUN_COMMAND_SPEC: ToolSpec = {
  name: 'run_command',
  description:
    "Run a shell command (e.g. the repository's tests) on a copy of the repository, with no network and no " +
    'credentials. Files it changes come back into the repository. Returns the exit code and the output.',
  inputSchema: {
    type: 'object',
    properties: {
      command: { type: 'string' },
      cwd: { type: 'string', description: 'A folder of the repository; its root when absent.' },
      timeLimitSeconds: { type: 'integer', description: 'At most 600; 120 when absent.' },
    },
    required: ['command'],
  },
};

/** The longest a command may run, whatever the model asks. */
const MAX_COMMAND_SECONDS = 600;

export interface ToolState {
  /** Content of each changed file before its first change (null: the file is new). */
  readonly originals: Record<string, string | null>;
  finished?: { summary: string };
}

export interface ToolOutcome {
  readonly status: 'success' | 'error';
  readonly text: string;
}

const str = (input: Record<string, unknown>, key: string, required = true): string | undefined => {
  const value = input[key];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string') throw new FanoutError('INVALID_INPUT', `${key} must be a string`);
  return value;
};

/** Runs one tool call against the workspace; a refused or failed call is an error result, not a crash. */
export async function runTool(
  name: string,
  input: Record<string, unknown>,
  workspace: Workspace,
  state: ToolState,
  sandbox?: SandboxCopy,
): Promise<ToolOutcome> {
  try {
    const inRepo = (path: string) => `${REPO_DIR}/${safeRelativePath(path)}`;
    const remember = async (path: string) => {
      if (path in state.originals) return;
      state.originals[path] = text(await workspace.read(inRepo(path))) ?? null;
    };
    switch (name) {
      case 'list_files': {
        const under = str(input, 'path', false);
        const prefix = under ? `${safeRelativePath(under)}/` : '';
        const files = (await workspace.list())
          .filter((f) => f.startsWith(`${REPO_DIR}/`))
          .map((f) => f.slice(REPO_DIR.length + 1))
          .filter((f) => f.startsWith(prefix));
        return { status: 'success', text: files.join('\n') || '(no files)' };
      }
      case 'read_file': {
        const path = str(input, 'path') as string;
        const content = text(await workspace.read(inRepo(path)));
        if (content === undefined) return { status: 'error', text: `no file ${path}` };
        const lines = content.split('\n');
        const start = Math.max(1, Number(input.startLine ?? 1));
        const end = Math.min(lines.length, Number(input.endLine ?? lines.length));
        return {
          status: 'success',
          text: lines
            .slice(start - 1, end)
            .map((line, i) => `${start + i}: ${line}`)
            .join('\n'),
        };
      }
      case 'search': {
        const needle = str(input, 'text') as string;
        const under = str(input, 'path', false);
        const prefix = `${REPO_DIR}/${under ? `${safeRelativePath(under)}/` : ''}`;
        const hits: string[] = [];
        for (const file of (await workspace.list()).filter((f) => f.startsWith(prefix))) {
          const lines = (text(await workspace.read(file)) ?? '').split('\n');
          lines.forEach((line, i) => {
            if (line.includes(needle) && hits.length < 100)
              hits.push(`${file.slice(REPO_DIR.length + 1)}:${i + 1}: ${line}`);
          });
        }
        return { status: 'success', text: hits.join('\n') || '(no matches)' };
      }
      case 'write_file': {
        const path = str(input, 'path') as string;
        await remember(path);
        await workspace.write(inRepo(path), str(input, 'content') as string);
        return { status: 'success', text: `wrote ${path}` };
      }
      case 'edit_file': {
        const path = str(input, 'path') as string;
        const oldText = str(input, 'oldText') as string;
        const current = text(await workspace.read(inRepo(path)));
        if (current === undefined) return { status: 'error', text: `no file ${path}` };
        const at = current.indexOf(oldText);
        if (at < 0 || oldText === '') return { status: 'error', text: `oldText is not in ${path}` };
        if (current.indexOf(oldText, at + 1) >= 0)
          return { status: 'error', text: `oldText occurs more than once in ${path}` };
        await remember(path);
        await workspace.write(
          inRepo(path),
          current.slice(0, at) + (str(input, 'newText') as string) + current.slice(at + oldText.length),
        );
        return { status: 'success', text: `edited ${path}` };
      }
      case 'run_command': {
        if (!sandbox) return { status: 'error', text: 'no tool named run_command' };
        const cwd = str(input, 'cwd', false);
        const seconds = Math.min(
          MAX_COMMAND_SECONDS,
          Math.max(1, Number(input.timeLimitSeconds ?? 120) || 120),
        );
        const { result, changedByCommand } = await sandbox.run(
          {
            command: str(input, 'command') as string,
            ...(cwd ? { cwd: safeRelativePath(cwd) } : {}),
            timeLimitMs: seconds * 1000,
          },
          Object.keys(state.originals),
          remember,
        );
        const how = result.stoppedBy
          ? `stopped: its ${result.stoppedBy} limit was reached`
          : result.exitCode === null
            ? `killed by ${result.signal}`
            : `exit code ${result.exitCode}`;
        const files = changedByCommand.length > 0 ? `\nfiles it changed: ${changedByCommand.join(', ')}` : '';
        return {
          status: 'success',
          text: `${how}, ${result.durationMs} ms${files}\n${result.output || '(no output)'}`,
        };
      }
      case 'finish':
        state.finished = { summary: str(input, 'summary') as string };
        return { status: 'success', text: 'finished' };
      default:
        return { status: 'error', text: `no tool named ${name}` };
    }
  } catch (error) {
    if (error instanceof FanoutError && error.code === 'LEASE_LOST') throw error;
    return { status: 'error', text: error instanceof Error ? error.message : String(error) };
  }
}
