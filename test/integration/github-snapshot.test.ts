import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { fetchSnapshot } from '../../shared/adapters/github-snapshot.js';
import { startFakeGitHub } from '../support/fake-github.js';
import { tarball } from '../support/tarball.js';

const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

describe('repository snapshot from a GitHub tarball', () => {
  it('puts the files, without the top folder, under repo/ in the job workspace; links are not followed', async () => {
    const gh = await startFakeGitHub({
      repos: {},
      tarballs: {
        'acme/api': tarball([
          { path: 'acme-api-0123456/', type: '5' },
          { path: 'acme-api-0123456/README.md', content: '# api\n' },
          { path: 'acme-api-0123456/src/greet.ts', content: 'export const greet = 1;\n' },
          { path: 'acme-api-0123456/secrets', type: '2', linkTo: '/etc/passwd' },
        ]),
      },
    });
    try {
      const ws = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'snap-'))).open(
        'runs/r/jobs/acme/api/1/',
      );
      const result = await fetchSnapshot('acme/api', ws, { baseUrl: gh.baseUrl, token: 'worker-token' });
      expect(result).toEqual({ files: 2, bytes: 30 });
      expect(await ws.list()).toEqual(['repo/README.md', 'repo/src/greet.ts']);
      expect(text(await ws.read('repo/src/greet.ts'))).toBe('export const greet = 1;\n');
      expect(gh.requests.at(-1)?.path).toBe('/repos/acme/api/tarball');
      expect(gh.requests.at(-1)?.authorization).toBe('token worker-token');
      // A given ref is the one fetched.
      await fetchSnapshot('acme/api', ws, { baseUrl: gh.baseUrl, ref: 'v1.2' });
      expect(gh.requests.at(-1)?.path).toBe('/repos/acme/api/tarball/v1.2');
    } finally {
      await gh.close();
    }
  });

  it('refuses an archive entry that would leave the workspace, and says when a repository is missing', async () => {
    const gh = await startFakeGitHub({
      repos: {},
      tarballs: { 'evil/repo': tarball([{ path: 'evil-repo-1/../../escape.txt', content: 'x' }]) },
    });
    try {
      const ws = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'snap-'))).open(
        'runs/r/jobs/evil/repo/1/',
      );
      await expect(fetchSnapshot('evil/repo', ws, { baseUrl: gh.baseUrl })).rejects.toMatchObject({
        code: 'WORKSPACE_PATH_REFUSED',
      });
      await expect(fetchSnapshot('acme/none', ws, { baseUrl: gh.baseUrl })).rejects.toMatchObject({
        code: 'AGENT_FAILED',
        message: expect.stringMatching(/snapshot of acme\/none was not found/),
      });
    } finally {
      await gh.close();
    }
  });

  it('stops an archive at its size cap while it streams, however much more the server would send', async () => {
    // A gzip stream of zeros without end (bounded at 4 GB unpacked, should the cap fail).
    let sent = 0;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-gzip' });
      const gzip = createGzip();
      gzip.pipe(res);
      const zeros = Buffer.alloc(1 << 20);
      const more = () => {
        while (sent < 4096 && !res.destroyed) {
          sent++;
          if (!gzip.write(zeros)) return gzip.once('drain', more);
        }
        gzip.end();
      };
      res.on('close', () => gzip.destroy());
      more();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const ws = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'snap-'))).open('runs/r/jobs/a/b/1/');
      await expect(fetchSnapshot('acme/endless', ws, { baseUrl, maxBytes: 2_000_000 })).rejects.toMatchObject(
        { code: 'AGENT_FAILED', message: expect.stringMatching(/larger than a snapshot may be/) },
      );
      // Cut off while it streams, not after the whole 4 GB: zeros compress a thousandfold, so
      // the socket's buffers alone hold tens of MB of them, and more on a loaded machine
      // (70 MB seen once in CI beside other tests; usually under 64).
      expect(sent).toBeLessThan(512);
      expect(await ws.list()).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
