import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { publishWork } from '../../shared/adapters/github-publisher.js';
import type { JobMessage } from '../../shared/domain/job.js';
import { startFakeGitHub } from '../support/fake-github.js';

const job: JobMessage = {
  v: 1,
  runId: 'r',
  issue: { repo: 'acme/api', number: 7, title: 'Fix the greeting', body: '', labels: [] },
  sentAt: 0,
};

async function finishedWorkspace() {
  const ws = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'publish-'))).open(
    'runs/r/jobs/acme/api/7/',
  );
  await ws.write('repo/src/greet.ts', 'export const greet = "Hello";\n');
  await ws.write('repo/src/new.ts', 'export {};\n');
  await ws.write('agent/changed-files.txt', 'src/greet.ts\nsrc/new.ts');
  await ws.write(
    'agent/diff.patch',
    '--- a/src/greet.ts\n+++ b/src/greet.ts\n@@ -1 +1 @@\n-"Helo"\n+"Hello"\n',
  );
  return ws;
}

describe('publishing by the worker', () => {
  it('makes a branch through the Git Data API and a draft PR that closes the issue, then comments the link; once', async () => {
    const gh = await startFakeGitHub({ repos: {}, gitRepos: ['acme/api'] });
    try {
      const ws = await finishedWorkspace();
      const first = await publishWork(job, ws, 'Fix the typo', {
        mode: 'pr',
        token: 'ghp_worker',
        baseUrl: gh.baseUrl,
      });
      expect(first).toEqual({ mode: 'pr', url: 'https://github.com/acme/api/pull/99' });
      expect(gh.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        'GET /repos/acme/api/git/ref/heads/fanout/issue-7',
        'GET /repos/acme/api',
        'GET /repos/acme/api/git/ref/heads/main',
        'GET /repos/acme/api/git/commits/base-commit',
        'POST /repos/acme/api/git/blobs',
        'POST /repos/acme/api/git/blobs',
        'POST /repos/acme/api/git/trees',
        'POST /repos/acme/api/git/commits',
        'POST /repos/acme/api/git/refs',
        'POST /repos/acme/api/pulls',
        'POST /repos/acme/api/issues/7/comments',
      ]);
      const body = (method: string, path: string) =>
        gh.requests.find((r) => r.method === method && r.path.endsWith(path))?.body;
      expect(body('POST', '/git/blobs')).toEqual({
        content: Buffer.from('export const greet = "Hello";\n').toString('base64'),
        encoding: 'base64',
      });
      expect(body('POST', '/git/trees')).toMatchObject({
        base_tree: 'base-tree',
        tree: [
          { path: 'src/greet.ts', mode: '100644', type: 'blob' },
          { path: 'src/new.ts', mode: '100644', type: 'blob' },
        ],
      });
      expect(body('POST', '/git/commits')).toMatchObject({
        parents: ['base-commit'],
        message: 'Fix the typo\n\nCloses #7',
      });
      expect(body('POST', '/git/refs')).toMatchObject({ ref: 'refs/heads/fanout/issue-7' });
      expect(body('POST', '/pulls')).toMatchObject({
        head: 'fanout/issue-7',
        base: 'main',
        draft: true,
        body: expect.stringMatching(/^Closes #7/),
      });
      expect(body('POST', '/comments')).toEqual({
        body: 'fanout opened https://github.com/acme/api/pull/99',
      });
      expect(gh.requests.every((r) => r.authorization === 'token ghp_worker')).toBe(true);

      // Run again: the branch is there, so no second pull request.
      const before = gh.requests.length;
      expect(
        await publishWork(job, ws, 'Fix the typo', { mode: 'pr', token: 'ghp_worker', baseUrl: gh.baseUrl }),
      ).toMatchObject({
        already: true,
      });
      expect(gh.requests.slice(before).map((r) => `${r.method} ${r.path}`)).toEqual([
        'GET /repos/acme/api/git/ref/heads/fanout/issue-7',
      ]);
      for (const file of await ws.list()) {
        expect(Buffer.from((await ws.read(file)) as Uint8Array).toString()).not.toContain('ghp_worker');
      }
    } finally {
      await gh.close();
    }
  });

  it('comments the summary and the patch on the issue, and needs a token for it', async () => {
    const gh = await startFakeGitHub({ repos: {}, gitRepos: ['acme/api'] });
    try {
      const ws = await finishedWorkspace();
      const published = await publishWork(job, ws, 'Fix the typo', {
        mode: 'comment',
        token: 't',
        baseUrl: gh.baseUrl,
      });
      expect(published.url).toMatch(/issues\/7#comment/);
      expect(gh.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        'POST /repos/acme/api/issues/7/comments',
      ]);
      expect(String(gh.requests[0]?.body?.body)).toMatch(
        /^Fix the typo\n\n```diff\n--- a\/src\/greet.ts[\s\S]*\+"Hello"\n```/,
      );
      await expect(publishWork(job, ws, 'x', { mode: 'pr', baseUrl: gh.baseUrl })).rejects.toThrow(
        /--publish pr needs GITHUB_TOKEN/,
      );
      expect(await publishWork(job, ws, 'x', { mode: 'none' })).toEqual({ mode: 'none' });
    } finally {
      await gh.close();
    }
  });
});
