import { Octokit } from '@octokit/rest';

/** An Octokit for fanout's GitHub calls: the worker's or the user's token, an API root, no console noise. */
export function githubClient(options: { token?: string; baseUrl?: string }): Octokit {
  return new Octokit({
    ...(options.token ? { auth: options.token } : {}),
    ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
    userAgent: 'fanout',
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
}
