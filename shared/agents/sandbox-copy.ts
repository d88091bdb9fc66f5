import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { CommandRequest, CommandResult, RoomOwner, Sandbox, SandboxRoom } from '../ports/sandbox.js';
import { REPO_DIR, type Workspace } from '../ports/workspace.js';

/**
 * Folders a command may fill that are not the change (dependencies, build output, caches):
 * left in the room, never copied back into the workspace or the diff.
 */
export const NOT_COPIED_BACK = new Set([
  'node_modules',
  '.git',
  'dist',
  'build',
  'target',
  '__pycache__',
  '.pytest_cache',
  '.venv',
  '.tox',
  '.mypy_cache',
  '.next',
  'coverage',
]);

const sha = (data: Uint8Array) => createHash('sha1').update(data).digest('hex');

/**
 * Pays for a command's compute: given its time limit before it runs (the worst case to
 * reserve), it runs it and settles what its duration cost.
 */
export type Meter = (timeLimitMs: number, run: () => Promise<CommandResult>) => Promise<CommandResult>;

/**
 * The job's repository as a sandbox room sees it: a copy of the workspace's `repo/` made
 * at the first command. Before each command the files the agent changed since are copied
 * in; after it, every file the command created, changed or removed is copied back into
 * the workspace (its original remembered first, so the diff includes it).
 */
export class SandboxCopy {
  private room: SandboxRoom | undefined;
  /** Each file of the room, by its path in the repository, as it was after the last sync. */
  private readonly synced = new Map<string, string>();

  constructor(
    private readonly sandbox: Sandbox,
    private readonly workspace: Workspace,
    private readonly meter: Meter = (_limit, run) => run(),
    private readonly owner: RoomOwner = { jobPrefix: '' },
  ) {}

  /**
   * Runs a command on the copy. `changed` are the repository paths the agent wrote since
   * the copy was made (their content goes in first); `remember` is told of each path the
   * command changes before the workspace's copy of it is replaced.
   */
  async run(
    request: CommandRequest,
    changed: readonly string[],
    remember: (path: string) => Promise<void>,
    /** False for a run that is not the agent's change (the tests' own runs): what it writes stays in the room. */
    copyBack = true,
  ): Promise<{ result: CommandResult; changedByCommand: string[] }> {
    if (!this.room) {
      this.room = await this.sandbox.open(this.owner);
      for (const file of await this.workspace.list()) {
        if (file.startsWith(`${REPO_DIR}/`)) await this.copyIn(file.slice(REPO_DIR.length + 1));
      }
    } else {
      for (const path of changed) await this.copyIn(path);
    }
    const room = this.room;
    const result = await this.meter(request.timeLimitMs ?? 0, () => room.run(request));
    const changedByCommand: string[] = [];
    const now = await this.scan(this.room.dir);
    for (const [path, digest] of now) {
      if (this.synced.get(path) === digest) continue;
      if (copyBack) {
        await remember(path);
        await this.workspace.write(`${REPO_DIR}/${path}`, await readFile(join(this.room.dir, path)));
      }
      this.synced.set(path, digest);
      changedByCommand.push(path);
    }
    for (const path of [...this.synced.keys()]) {
      if (now.has(path)) continue;
      if (copyBack) {
        await remember(path);
        await this.workspace.remove(`${REPO_DIR}/${path}`);
      }
      this.synced.delete(path);
      changedByCommand.push(path);
    }
    return { result, changedByCommand: changedByCommand.sort() };
  }

  async dispose(): Promise<void> {
    await this.room?.dispose();
    this.room = undefined;
  }

  /** The workspace's file (or its absence) into the room. */
  private async copyIn(path: string): Promise<void> {
    const room = this.room as SandboxRoom;
    const data = await this.workspace.read(`${REPO_DIR}/${path}`);
    const target = join(room.dir, path);
    if (data === undefined) {
      await rm(target, { force: true });
      this.synced.delete(path);
      return;
    }
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, data);
    this.synced.set(path, sha(data));
  }

  /** Every file of the room but the folders not copied back, with its digest. */
  private async scan(root: string): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!NOT_COPIED_BACK.has(entry.name)) await walk(path);
        } else if (entry.isFile()) {
          found.set(relative(root, path), sha(await readFile(path)));
        }
      }
    };
    await walk(root);
    return found;
  }
}
