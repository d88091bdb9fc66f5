import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { safeRelativePath } from '../../shared/domain/workspace-path.js';
import type { Workspace } from '../../shared/ports/workspace.js';

describe('workspace paths', () => {
  it('keeps a path inside the prefix in canonical form', () => {
    expect(safeRelativePath('a/./b//c.txt')).toBe('a/b/c.txt');
  });

  it.each(['', '../x', 'a/../../x', '/etc/passwd', 'C:/x', 'a\\b', 'a\0b', '.', 'a/..'])(
    'refuses %j',
    (path) => {
      expect(() => safeRelativePath(path)).toThrowError(
        expect.objectContaining({ code: 'WORKSPACE_PATH_REFUSED' }),
      );
    },
  );
});

describe('folder workspace', () => {
  let root: string;
  let one: Workspace;
  let two: Workspace;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'fanout-ws-'));
    const store = new FolderWorkspaceStore(root);
    one = store.open('runs/r/jobs/acme/api/1/');
    two = store.open('runs/r/jobs/acme/api/12/');
  });

  it('reads, lists and removes only its own files', async () => {
    await one.write('notes/a.txt', 'one');
    await two.write('notes/a.txt', 'two');
    expect(Buffer.from((await one.read('notes/a.txt')) as Uint8Array).toString()).toBe('one');
    expect(await one.list()).toEqual(['notes/a.txt']);
    await one.remove('notes/a.txt');
    expect(await one.read('notes/a.txt')).toBeUndefined();
    expect(await two.list()).toEqual(['notes/a.txt']);
    expect(one.location).toBe(join(root, 'runs/r/jobs/acme/api/1'));
  });

  it('refuses to write or read through a symlink', async () => {
    const outside = join(root, 'outside.txt');
    await writeFile(outside, 'secret');
    await one.write('seed.txt', 'x');
    await symlink(outside, join(one.location, 'link.txt'));
    await symlink(root, join(one.location, 'dir'));
    await expect(one.read('link.txt')).rejects.toThrow();
    await expect(one.write('link.txt', 'overwrite')).rejects.toThrow();
    await expect(one.read('dir/outside.txt')).rejects.toThrowError(
      expect.objectContaining({ code: 'WORKSPACE_PATH_REFUSED' }),
    );
    await expect(one.write('dir/new.txt', 'x')).rejects.toThrowError(
      expect.objectContaining({ code: 'WORKSPACE_PATH_REFUSED' }),
    );
  });
});
