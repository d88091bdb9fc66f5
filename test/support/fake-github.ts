import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeIssue {
  number: number;
  title: string;
  body?: string | null;
  labels?: string[];
  pullRequest?: boolean;
}

export interface FakeGitHubOptions {
  /** Issues (and pull requests) of each repository, newest first as GitHub lists them. */
  readonly repos: Record<string, FakeIssue[]>;
  /** Answer the nth request (1-based) with a 403 primary rate limit whose reset is `resetInSeconds` away. */
  readonly rateLimitOnRequest?: number;
  readonly resetInSeconds?: number;
  /** The gzipped tarball of each repository (GET /repos/{owner}/{repo}/tarball/{ref}). */
  readonly tarballs?: Record<string, Buffer>;
  /** Repositories that answer the Git Data, pulls and comments calls (a branch `main` to start from). */
  readonly gitRepos?: string[];
  /** Tokens answered 401, and tokens answered 403 (valid but without access). */
  readonly badTokens?: string[];
  readonly noAccessTokens?: string[];
}

/**
 * A loopback server that answers the GitHub REST calls fanout makes, the way GitHub
 * does: paged issue lists with Link headers (pull requests included, as the real API
 * lists them), a 403 rate-limit answer with reset headers, 401, 403 and 404.
 */
export async function startFakeGitHub(options: FakeGitHubOptions) {
  const requests: {
    method: string;
    path: string;
    query: URLSearchParams;
    authorization?: string;
    body?: Record<string, unknown>;
  }[] = [];
  // A tiny git server: refs by name, objects by a counter.
  const refs = new Map<string, string>([['heads/main', 'base-commit']]);
  let objects = 0;
  let base = '';
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () =>
      handle(req, res, chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined),
    );
  });
  const handle = (
    req: IncomingMessage,
    res: import('node:http').ServerResponse,
    body?: Record<string, unknown>,
  ) => {
    const url = new URL(req.url ?? '/', base);
    const path = decodeURIComponent(url.pathname);
    requests.push({
      method: req.method ?? 'GET',
      path,
      query: url.searchParams,
      authorization: req.headers.authorization,
      ...(body ? { body } : {}),
    });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    const token = req.headers.authorization?.replace(/^(token|bearer) /i, '');
    if (token && options.badTokens?.includes(token)) return json(401, { message: 'Bad credentials' });
    if (requests.length === options.rateLimitOnRequest) {
      const reset = Math.floor(Date.now() / 1000) + (options.resetInSeconds ?? 1);
      return json(
        403,
        { message: 'API rate limit exceeded' },
        { 'x-ratelimit-remaining': '0', 'x-ratelimit-limit': '60', 'x-ratelimit-reset': String(reset) },
      );
    }
    const git = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
    if (git && options.gitRepos?.includes(`${git[1]}/${git[2]}`)) {
      const rest = git[3] ?? '';
      const made = (prefix: string) => `${prefix}-${++objects}`;
      const route = `${req.method} ${rest
        .replace(/\/(blobs|trees|commits)\/.+$/, '/$1/:sha')
        .replace(/^\/git\/ref\/.+$/, '/git/ref/:ref')
        .replace(/^\/issues\/\d+\/(comments|labels)$/, '/issues/:n/$1')}`;
      switch (route) {
        case 'GET ':
          return json(200, { default_branch: 'main' });
        case 'GET /git/ref/:ref': {
          const ref = rest.slice('/git/ref/'.length);
          const sha = refs.get(ref);
          return sha
            ? json(200, {
                ref: `refs/${ref}`,
                url: `${base}/repos/${git[1]}/${git[2]}/git/refs/${ref}`,
                object: { sha },
              })
            : json(404, { message: 'Not Found' });
        }
        case 'GET /git/commits/:sha':
          return json(200, { sha: rest.split('/').at(-1), tree: { sha: 'base-tree' } });
        case 'POST /git/blobs':
          return json(201, { sha: made('blob') });
        case 'POST /git/trees':
          return json(201, { sha: made('tree') });
        case 'POST /git/commits':
          return json(201, { sha: made('commit') });
        case 'POST /git/refs':
          refs.set(String(body?.ref).replace(/^refs\//, ''), String(body?.sha));
          return json(201, { ref: body?.ref, object: { sha: body?.sha } });
        case 'POST /pulls':
          return json(201, { number: 99, html_url: `https://github.com/${git[1]}/${git[2]}/pull/99` });
        case 'POST /issues/:n/labels':
          // GitHub makes a label the repository does not have yet.
          return json(
            200,
            ((body?.labels as string[] | undefined) ?? []).map((name) => ({ name })),
          );
        case 'POST /issues/:n/comments':
          return json(201, {
            html_url: `https://github.com/${git[1]}/${git[2]}/issues/${rest.split('/')[2]}#comment-${++objects}`,
          });
      }
    }
    const tar = /^\/repos\/([^/]+)\/([^/]+)\/tarball(\/.*)?$/.exec(url.pathname);
    if (tar) {
      const archive = options.tarballs?.[`${tar[1]}/${tar[2]}`];
      if (!archive) return json(404, { message: 'Not Found' });
      res.writeHead(200, { 'content-type': 'application/x-gzip' });
      res.end(archive);
      return;
    }
    if (url.pathname === '/search/issues') return search(url, json);
    const match = /^\/repos\/([^/]+)\/([^/]+)\/issues$/.exec(url.pathname);
    const items = match ? options.repos[`${match[1]}/${match[2]}`] : undefined;
    if (!match || !items) return json(404, { message: 'Not Found' });
    if (token && options.noAccessTokens?.includes(token))
      return json(403, { message: 'Resource not accessible by integration' });

    const labels = url.searchParams.get('labels')?.split(',').filter(Boolean) ?? [];
    const filtered = items.filter((item) => labels.every((l) => item.labels?.includes(l)));
    const { slice, headers } = paged(url, filtered);
    json(
      200,
      slice.map((item) => ({
        number: item.number,
        title: item.title,
        body: item.body ?? null,
        labels: (item.labels ?? []).map((name) => ({ name })),
        html_url: `https://github.com/${match[1]}/${match[2]}/${item.pullRequest ? 'pull' : 'issues'}/${item.number}`,
        ...(item.pullRequest ? { pull_request: { url: 'x' } } : {}),
      })),
      headers,
    );
  };
  /**
   * GET /search/issues as GitHub answers it, for the qualifiers fanout uses: org:, is:issue,
   * is:open / is:closed (every fake issue is open), label:"..." (all of them); 422 for an
   * organisation with no repository; total_count, and at most 1,000 results in all.
   */
  const search = (
    url: URL,
    json: (status: number, body: unknown, headers?: Record<string, string>) => void,
  ) => {
    const q = url.searchParams.get('q') ?? '';
    const org = /(?:^| )org:(\S+)/.exec(q)?.[1];
    const labels = [...q.matchAll(/label:"([^"]*)"/g)].map((m) => m[1] as string);
    const repos = Object.keys(options.repos).filter((repo) => repo.split('/')[0] === org);
    if (!org || repos.length === 0) {
      return json(422, {
        message: 'Validation Failed',
        errors: [
          {
            message:
              'The listed users and repositories cannot be searched either because the resources do not exist or you do not have permission to view them.',
          },
        ],
      });
    }
    const all = q.includes('is:closed')
      ? []
      : repos.flatMap((repo) =>
          (options.repos[repo] ?? [])
            .filter((item) => !(q.includes('is:issue') && item.pullRequest))
            .filter((item) => labels.every((l) => item.labels?.includes(l)))
            .map((item) => ({ repo, item })),
        );
    const { slice, headers } = paged(url, all.slice(0, 1000));
    json(
      200,
      {
        total_count: all.length,
        incomplete_results: false,
        items: slice.map(({ repo, item }) => ({
          number: item.number,
          title: item.title,
          body: item.body ?? null,
          labels: (item.labels ?? []).map((name) => ({ name })),
          repository_url: `${base}/repos/${repo}`,
          html_url: `https://github.com/${repo}/issues/${item.number}`,
        })),
      },
      headers,
    );
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl: base,
    requests,
    refs,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The page `url` asks for (per_page, page) and the Link header to the next and last, as GitHub pages a list. */
function paged<T>(url: URL, items: readonly T[]): { slice: T[]; headers: Record<string, string> } {
  const perPage = Number(url.searchParams.get('per_page') ?? 30);
  const page = Number(url.searchParams.get('page') ?? 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (p: number) => {
    const next = new URL(url.toString());
    next.searchParams.set('page', String(p));
    return next.toString();
  };
  const headers: Record<string, string> = {};
  if (page < last) headers.link = `<${link(page + 1)}>; rel="next", <${link(last)}>; rel="last"`;
  return { slice: items.slice((page - 1) * perPage, page * perPage), headers };
}
