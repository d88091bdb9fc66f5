import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchGitHubIssues, searchGitHubIssues } from '../../shared/adapters/github-issues.js';
import { type FakeIssue, startFakeGitHub } from '../support/fake-github.js';

const backlog = (count: number, extra: Partial<FakeIssue> = {}): FakeIssue[] =>
  Array.from({ length: count }, (_, i) => ({
    number: count - i,
    title: `Issue ${count - i}`,
    labels: ['agent'],
    ...extra,
  }));

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('GitHub source, through Octokit, against a local GitHub', () => {
  it('reads every page, leaves pull requests out, and keeps labels, body and url', async () => {
    const items = [...backlog(230), { number: 999, title: 'A pull request', pullRequest: true }];
    const gh = await startFakeGitHub({ repos: { 'acme/api': items } });
    close = gh.close;
    const issues = await fetchGitHubIssues({ repo: 'acme/api' }, { baseUrl: gh.baseUrl, token: 't0k' });
    expect(issues).toHaveLength(230);
    expect(issues.some((i) => i.number === 999)).toBe(false);
    expect(gh.requests.filter((r) => r.path === '/repos/acme/api/issues')).toHaveLength(3);
    expect(gh.requests[0]?.query.get('state')).toBe('open');
    expect(gh.requests[0]?.authorization).toBe('token t0k');
    expect(issues[0]).toEqual({
      repo: 'acme/api',
      number: 230,
      title: 'Issue 230',
      body: '',
      labels: ['agent'],
      url: 'https://github.com/acme/api/issues/230',
    });
  });

  it('passes label, state and since, and stops at the limit', async () => {
    const gh = await startFakeGitHub({
      repos: { 'acme/api': [...backlog(50), { number: 77, title: 'other', labels: ['bug'] }] },
    });
    close = gh.close;
    const issues = await fetchGitHubIssues(
      { repo: 'acme/api', labels: ['agent'], state: 'all', since: '2026-01-01T00:00:00Z', limit: 7 },
      { baseUrl: gh.baseUrl },
    );
    expect(issues.map((i) => i.number)).toEqual([50, 49, 48, 47, 46, 45, 44]);
    expect(gh.requests[0]?.query.get('labels')).toBe('agent');
    expect(gh.requests[0]?.query.get('state')).toBe('all');
    expect(gh.requests[0]?.query.get('since')).toBe('2026-01-01T00:00:00Z');
  });

  it('waits out a rate limit, saying so, then carries on', async () => {
    const gh = await startFakeGitHub({
      repos: { 'acme/api': backlog(150) },
      rateLimitOnRequest: 2,
      resetInSeconds: 30,
    });
    close = gh.close;
    const waits: number[] = [];
    const said: string[] = [];
    const issues = await fetchGitHubIssues(
      { repo: 'acme/api' },
      {
        baseUrl: gh.baseUrl,
        onWait: (_ms, reason) => said.push(reason),
        // The wait itself is the mechanism under test: record it instead of spending 30 s.
        sleep: async (ms) => {
          waits.push(ms);
        },
      },
    );
    expect(issues).toHaveLength(150);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThan(25_000);
    expect(said[0]).toMatch(/GitHub rate limit reached; waiting \d+s/);
  });

  it.each([
    [
      'a repository that does not exist',
      'acme/nope',
      undefined,
      /repository acme\/nope was not found on GitHub, or the token cannot see it/,
    ],
    ['a token GitHub refuses', 'acme/api', 'bad', /GitHub refused GITHUB_TOKEN \(401\)/],
    ['a token without access', 'acme/api', 'weak', /the token has no access to acme\/api's issues \(403\)/],
  ])('explains %s', async (_what, repo, token, message) => {
    const gh = await startFakeGitHub({
      repos: { 'acme/api': backlog(3) },
      badTokens: ['bad'],
      noAccessTokens: ['weak'],
    });
    close = gh.close;
    await expect(
      fetchGitHubIssues({ repo }, { baseUrl: gh.baseUrl, ...(token ? { token } : {}) }),
    ).rejects.toThrowError(
      expect.objectContaining({ code: 'INVALID_INPUT', message: expect.stringMatching(message) }),
    );
  });

  it('says GitHub could not be reached, not that it answered 500, when there is no network', async () => {
    // A port nothing listens on: taken, then given back.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    await expect(
      fetchGitHubIssues({ repo: 'acme/api' }, { baseUrl: `http://127.0.0.1:${port}` }),
    ).rejects.toThrow(/could not reach GitHub \(ECONNREFUSED\): check the network, or GITHUB_API_URL/);
  });
});

describe("an organisation's issues, through GitHub's search", () => {
  it('finds the labelled issues of every repository in the organisation, page by page, each keyed by its repository', async () => {
    const gh = await startFakeGitHub({
      repos: {
        'acme/api': [
          ...backlog(150),
          { number: 999, title: 'A pull request', labels: ['agent'], pullRequest: true },
        ],
        'acme/web': [...backlog(3), { number: 50, title: 'Not for agents', labels: ['human'] }],
        'other/api': backlog(5),
      },
    });
    close = gh.close;
    const issues = await searchGitHubIssues(
      { org: 'acme', labels: ['agent'] },
      { baseUrl: gh.baseUrl, token: 't0k' },
    );
    expect(issues).toHaveLength(153);
    expect(new Set(issues.map((i) => i.repo))).toEqual(new Set(['acme/api', 'acme/web']));
    const keys = issues.map((i) => `${i.repo}#${i.number}`);
    expect(keys).not.toContain('acme/api#999'); // a pull request
    expect(keys).not.toContain('acme/web#50'); // not labelled agent
    expect(issues.find((i) => i.repo === 'acme/web' && i.number === 3)).toEqual({
      repo: 'acme/web',
      number: 3,
      title: 'Issue 3',
      body: '',
      labels: ['agent'],
      url: 'https://github.com/acme/web/issues/3',
    });
    const searches = gh.requests.filter((r) => r.path === '/search/issues');
    expect(searches).toHaveLength(2);
    expect(searches[0]?.query.get('q')).toBe('org:acme is:issue is:open label:"agent"');
    expect(searches[0]?.authorization).toBe('token t0k');
  });

  it('refuses an organisation it cannot see, and a query past the 1,000 results search returns, saying what to do', async () => {
    const gh = await startFakeGitHub({ repos: { 'acme/api': backlog(1_200) } });
    close = gh.close;
    await expect(searchGitHubIssues({ org: 'nobody' }, { baseUrl: gh.baseUrl })).rejects.toThrow(
      /organisation nobody was not found on GitHub, or the token cannot see it/,
    );
    await expect(searchGitHubIssues({ org: 'acme' }, { baseUrl: gh.baseUrl })).rejects.toThrow(
      /1200 issues match "org:acme is:issue is:open"; GitHub's search returns at most 1000: narrow it with --label/,
    );
    // Asked for at most 1,000, it takes them.
    expect(await searchGitHubIssues({ org: 'acme', limit: 1000 }, { baseUrl: gh.baseUrl })).toHaveLength(
      1000,
    );
  });
});
