import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { FanoutError } from '../domain/errors.js';
import { safeRelativePath } from '../domain/workspace-path.js';
import type { Workspace, WorkspaceStore } from '../ports/workspace.js';

/**
 * Workspaces as folders: the same layout as the S3 bucket, under a local root. Reads and
 * writes use the synchronous calls: each asynchronous call is a hop through libuv's thread
 * pool, and a job's one small result file cost 2.7 ms of wall time in four of them (issue
 * #14's trace), against microseconds for the calls themselves on a local disk. The
 * workspace is local by construction, so no call waits on a network.
 */
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
  private resolve(path: string): string {
    const parts = safeRelativePath(path).split('/');
    let current = this.location;
    for (const part of parts) {
      current = join(current, part);
      const info = lstatSync(current, { throwIfNoEntry: false });
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
    const target = this.resolve(path);
    mkdirSync(target.slice(0, target.lastIndexOf(sep)), { recursive: true });
    // O_NOFOLLOW: a symlink planted after the check is still refused.
    const fd = openSync(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    );
    try {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let written = 0;
      while (written < bytes.byteLength) written += writeSync(fd, bytes, written);
    } finally {
      closeSync(fd);
    }
  }

  async read(path: string): Promise<Uint8Array | undefined> {
    const target = this.resolve(path);
    let fd: number;
    try {
      fd = openSync(target, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const data = new Uint8Array(fstatSync(fd).size);
      let read = 0;
      while (read < data.byteLength) {
        const n = readSync(fd, data, read, data.byteLength - read, read);
        if (n === 0) return data.subarray(0, read);
        read += n;
      }
      return data;
    } finally {
      closeSync(fd);
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
    await rm(this.resolve(path), { force: true });
  }
}
