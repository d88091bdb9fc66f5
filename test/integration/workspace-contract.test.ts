import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { S3WorkspaceStore } from '../../shared/adapters/s3-workspace.js';
import type { WorkspaceStore } from '../../shared/ports/workspace.js';
import { type S3Fixture, startS3 } from '../support/aws-engines.js';

let s3: S3Fixture;
let folderRoot: string;
beforeAll(async () => {
  s3 = await startS3();
  folderRoot = await mkdtemp(join(tmpdir(), 'fanout-contract-'));
});
afterAll(() => s3.close());

/** One contract, two stores: the local folders and S3 (on s3rver) must behave alike. */
const stores: [string, () => WorkspaceStore][] = [
  ['folder', () => new FolderWorkspaceStore(folderRoot)],
  ['s3', () => new S3WorkspaceStore({ client: s3.client, bucket: s3.bucket })],
];

describe.each(stores)('%s workspace contract', (name, store) => {
  const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

  it('writes, reads, lists and removes files under its own prefix only', async () => {
    const one = store().open(`runs/${name}/jobs/acme/api/1/`);
    const twelve = store().open(`runs/${name}/jobs/acme/api/12/`);
    await one.write('result.json', '{"ok":true}');
    await one.write('notes/deep/a.txt', 'a');
    await twelve.write('result.json', 'other job');
    expect(text(await one.read('result.json'))).toBe('{"ok":true}');
    expect(await one.list()).toEqual(['notes/deep/a.txt', 'result.json']);
    expect(await twelve.list()).toEqual(['result.json']);
    await one.remove('notes/deep/a.txt');
    expect(await one.list()).toEqual(['result.json']);
    expect(text(await twelve.read('result.json'))).toBe('other job');
  });

  it('keeps bytes exactly and answers undefined for a missing file', async () => {
    const ws = store().open(`runs/${name}/jobs/acme/api/2/`);
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
    await ws.write('blob.bin', bytes);
    expect(await ws.read('blob.bin')).toEqual(bytes);
    expect(await ws.read('nothing-here.txt')).toBeUndefined();
  });

  it.each(['../escape.txt', '/etc/passwd', 'a/../../b', '..', 'x\\y'])(
    'refuses %j for every operation',
    async (path) => {
      const ws = store().open(`runs/${name}/jobs/acme/api/3/`);
      const refused = expect.objectContaining({ code: 'WORKSPACE_PATH_REFUSED' });
      await expect(ws.write(path, 'x')).rejects.toThrowError(refused);
      await expect(ws.read(path)).rejects.toThrowError(refused);
      await expect(ws.remove(path)).rejects.toThrowError(refused);
    },
  );
});
