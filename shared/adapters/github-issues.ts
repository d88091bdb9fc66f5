import { FanoutError, inCauses } from '../domain/errors.js';
import { type Issue, IssueSchema } from '../domain/job.js';
import { githubClient } from './github-client.js';

/** Which issues of a source to take. */
export interface GitHubFilters {
  /** Issues with every one of these labels. */
  readonly labels?: readonly string[];
  /** @default 'open' */
  readonly state?: 'open' | 'closed' | 'all';
  /** At most this many issues from the source. */
  readonly limit?: number;
  /** Only issues updated at or after this time (ISO 8601). */
  readonly since?: string;
}

export interface GitHubQuery extends GitHubFilters {
  /** owner/name */
  readonly repo: string;
}

export interface GitHubSourceOptions {
  readonly token?: string;
  /** The API root; a test points it at a local server. @default https://api.github.com */
  readonly baseUrl?: string;
  /** Told before each wait for a rate limit to reset, so the user sees why nothing moves. */
  readonly onWait?: (ms: number, reason: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly clock?: () => number;
}

interface HttpError {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | undefined> };
}

/** A rate-limited answer: 429, or 403 with no requests left (primary) or a retry-after (secondary). */
function rateLimitWaitMs(error: HttpError, now: number): number | undefined {
  const headers = error.response?.headers ?? {};
  if (error.status !== 403 && error.status !== 429) return undefined;
  const retryAfter = headers['retry-after'];
  if (retryAfter !== undefined) return Number(retryAfter) * 1000;
  if (headers['x-ratelimit-remaining'] === '0' && headers['x-ratelimit-reset'] !== undefined) {
    return Math.max(0, Number(headers['x-ratelimit-reset']) * 1000 - now) + 1000;
  }
  return error.status === 429 ? 60_000 : undefined;
}

/** Why a request got no answer: Node's code for it (ENOTFOUND, ECONNREFUSED, ...), or the message. */
function networkReason(error: HttpError): string {
  const code = inCauses(error, (e: { code?: unknown }) =>
    typeof e.code === 'string' && /^E[A-Z]+$|^UND_ERR/.test(e.code) ? e.code : undefined,
  );
  return code ?? error.message ?? 'no answer';
}

function explain(error: HttpError, repo: string, hasToken: boolean): FanoutError {
  const status = error.status;
  const message =
    status === 404
      ? `repository ${repo} was not found on GitHub, or the token cannot see it` +
        (hasToken ? '' : ' (a private repository needs GITHUB_TOKEN)')
      : status === 401
        ? 'GitHub refused GITHUB_TOKEN (401): it is wrong or expired; create a new one with read access to issues'
        : status === 403
          ? `the token has no access to ${repo}'s issues (403): give it read access to the repository`
          : status === undefined || !error.response
            ? `could not reach GitHub (${networkReason(error)}): check the network, or GITHUB_API_URL for GitHub Enterprise`
            : `GitHub answered ${status} for ${repo}: ${error.message ?? ''}`;
  return new FanoutError('INVALID_INPUT', message, { cause: error });
}

/** An Octokit whose requests wait out GitHub's rate limits, saying so through `onWait`. */
function patientClient(options: GitHubSourceOptions) {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const clock = options.clock ?? Date.now;
  const octokit = githubClient(options);
  octokit.hook.wrap('request', async (request, requestOptions) => {
    for (;;) {
      try {
        return await request(requestOptions);
      } catch (error) {
        const waitMs = rateLimitWaitMs(error as HttpError, clock());
        if (waitMs === undefined) throw error;
        options.onWait?.(
          waitMs,
          `GitHub rate limit reached; waiting ${Math.ceil(waitMs / 1000)}s for it to reset`,
        );
        await sleep(waitMs);
      }
    }
  });
  return octokit;
}

type IssueItem = {
  number: number;
  title: string;
  body?: string | null;
  labels: (string | { name?: string })[];
  html_url: string;
};

function toIssue(repo: string, item: IssueItem) {
  return IssueSchema.safeParse({
    repo,
    number: item.number,
    title: item.title,
    body: item.body ?? '',
    labels: item.labels
      .map((label) => (typeof label === 'string' ? label : (label.name ?? '')))
      .filter(Boolean),
    url: item.html_url,
  });
}

/**
 * Reads issues from a repository through the GitHub REST API: every page, pull
 * requests left out, rate limits waited out (with `onWait` saying so).
 */
export async function fetchGitHubIssues(
  query: GitHubQuery,
  options: GitHubSourceOptions = {},
): Promise<Issue[]> {
  const [owner, name] = query.repo.split('/');
  if (!owner || !name || query.repo.split('/').length !== 2) {
    throw new FanoutError('INVALID_INPUT', `--github needs owner/repo, not "${query.repo}"`);
  }
  const octokit = patientClient(options);
  const issues: Issue[] = [];
  const problems: string[] = [];
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  try {
    const pages = octokit.paginate.iterator(octokit.rest.issues.listForRepo, {
      owner,
      repo: name,
      state: query.state ?? 'open',
      per_page: 100,
      ...(query.labels && query.labels.length > 0 ? { labels: query.labels.join(',') } : {}),
      ...(query.since ? { since: query.since } : {}),
    });
    for await (const page of pages) {
      for (const item of page.data) {
        if (item.pull_request) continue; // the issues API lists pull requests too
        const parsed = toIssue(query.repo, item);
        if (parsed.success) issues.push(parsed.data);
        else problems.push(`#${item.number}: ${parsed.error.issues[0]?.message}`);
        if (issues.length >= limit) return issues;
      }
    }
  } catch (error) {
    if (error instanceof FanoutError) throw error;
    throw explain(error as HttpError, query.repo, Boolean(options.token));
  }
  if (problems.length > 0) {
    throw new FanoutError(
      'INVALID_INPUT',
      `issues of ${query.repo} that cannot be sent:\n  ${problems.join('\n  ')}`,
    );
  }
  return issues;
}

export interface GitHubOrgQuery extends GitHubFilters {
  readonly org: string;
}

/** GitHub's search returns at most 1,000 results for one query, whatever the pages. */
export const SEARCH_MAX_RESULTS = 1000;

/**
 * The issues of every repository of an organisation that the token can see, through
 * GitHub's search (`org:ORG is:issue label:...`), oldest first. GitHub's search returns at
 * most 1,000 results and may give up on a slow query (`incomplete_results`): a query past
 * either is refused with what to do, never sent in part.
 */
export async function searchGitHubIssues(
  query: GitHubOrgQuery,
  options: GitHubSourceOptions = {},
): Promise<Issue[]> {
  if (!/^[A-Za-z0-9-]+$/.test(query.org)) {
    throw new FanoutError('INVALID_INPUT', `--github-org needs an organisation name, not "${query.org}"`);
  }
  const state = query.state ?? 'open';
  const q = [
    `org:${query.org}`,
    'is:issue',
    ...(state === 'all' ? [] : [`is:${state}`]),
    ...(query.labels ?? []).map((label) => `label:"${label.replaceAll('"', '')}"`),
    ...(query.since ? [`updated:>=${query.since}`] : []),
  ].join(' ');
  const octokit = patientClient(options);
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  const issues: Issue[] = [];
  const problems: string[] = [];
  try {
    const pages = octokit.paginate.iterator(octokit.rest.search.issuesAndPullRequests, {
      q,
      sort: 'created',
      order: 'asc',
      per_page: 100,
    });
    for await (const page of pages) {
      const data = page.data as typeof page.data & { total_count?: number; incomplete_results?: boolean };
      if (data.incomplete_results) {
        throw new FanoutError(
          'INVALID_INPUT',
          `GitHub's search timed out on "${q}" and returned part of its results: send again, or narrow it with --label or --since`,
        );
      }
      const total = data.total_count ?? 0;
      if (total > SEARCH_MAX_RESULTS && limit > SEARCH_MAX_RESULTS) {
        throw new FanoutError(
          'INVALID_INPUT',
          `${total} issues match "${q}"; GitHub's search returns at most ${SEARCH_MAX_RESULTS}: narrow it with --label ` +
            `or --since, name the repositories with --github, or take the oldest ${SEARCH_MAX_RESULTS} with --limit ${SEARCH_MAX_RESULTS}`,
        );
      }
      for (const item of data) {
        if (item.pull_request) continue;
        const repo = new URL(item.repository_url).pathname.split('/').slice(-2).join('/');
        const parsed = toIssue(repo, item);
        if (parsed.success) issues.push(parsed.data);
        else problems.push(`${repo}#${item.number}: ${parsed.error.issues[0]?.message}`);
        if (issues.length >= limit) return issues;
      }
    }
  } catch (error) {
    if (error instanceof FanoutError) throw error;
    const http = error as HttpError;
    if (http.status === 422) {
      throw new FanoutError(
        'INVALID_INPUT',
        `organisation ${query.org} was not found on GitHub, or the token cannot see it` +
          (options.token ? '' : ' (private repositories need GITHUB_TOKEN)'),
        { cause: error },
      );
    }
    throw explain(http, `organisation ${query.org}`, Boolean(options.token));
  }
  if (problems.length > 0) {
    throw new FanoutError(
      'INVALID_INPUT',
      `issues of ${query.org} that cannot be sent:\n  ${problems.join('\n  ')}`,
    );
  }
  return issues;
}
