import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { FanoutError } from '../domain/errors.js';
import { safeRelativePath } from '../domain/workspace-path.js';
import type { Workspace, WorkspaceStore } from '../ports/workspace.js';

/** Workspaces as folders: the same layout as the S3 bucket, under a local root. */
export class FolderWorkspaceStore implements WorkspaceStore {
  constructor(private readonly root: string) {}

  open(prefix: string): Workspace {
    return new FolderWorkspace(this.root, prefix);
  }
}

class FolderWorkspace implements Workspace {
  readonly location: string;

  constructor(
    root: string,
    readonly prefix: string,
  ) {
    this.location = join(root, ...prefix.split('/').filter(Boolean));
  }

  /** Refuses a path whose folders inside the workspace are symlinks: they could point anywhere. */
  private async resolve(path: string): Promise<string> {
    const parts = safeRelativePath(path).split('/');
    let current = this.location;
    for (const part of parts) {
      current = join(current, part);
      const info = await lstat(current).catch(() => undefined);
      if (info?.isSymbolicLink()) {
        throw new FanoutError(
          'WORKSPACE_PATH_REFUSED',
          `workspace path "${path}" refused: it goes through a symlink`,
        );
      }
      if (!info) break;
    }
    return join(this.location, ...parts);
  }

  async write(path: string, data: string | Uint8Array): Promise<void> {
    const target = await this.resolve(path);
    await mkdir(target.slice(0, target.lastIndexOf(sep)), { recursive: true });
    // O_NOFOLLOW: a symlink planted after the check is still refused.
    const file = await open(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    );
    try {
      await file.writeFile(data);
    } finally {
      await file.close();
    }
  }

  async read(path: string): Promise<Uint8Array | undefined> {
    const target = await this.resolve(path);
    try {
      const file = await open(target, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const data = await file.readFile();
        return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      } finally {
        await file.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async list(): Promise<string[]> {
    const entries = await readdir(this.location, { recursive: true, withFileTypes: true }).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [];
        throw error;
      },
    );
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) =>
        join(entry.parentPath, entry.name)
          .slice(this.location.length + 1)
          .split(sep)
          .join('/'),
      )
      .sort();
  }

  async remove(path: string): Promise<void> {
    await rm(await this.resolve(path), { force: true });
  }
}
