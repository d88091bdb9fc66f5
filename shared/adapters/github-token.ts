import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { inCauses } from '../domain/errors.js';

/**
 * The worker's GitHub token, never handed to an agent. `refresh` reads it again: after
 * GitHub answers 401 the secret may have been rotated since the worker read it.
 */
export interface GitHubToken {
  get(): Promise<string | undefined>;
  refresh(): Promise<string | undefined>;
}

/** A token from the environment (the local worker's GITHUB_TOKEN), read again on refresh. */
export function envToken(env: NodeJS.ProcessEnv, name = 'GITHUB_TOKEN'): GitHubToken {
  return { get: async () => env[name] || undefined, refresh: async () => env[name] || undefined };
}

/** A token kept in Secrets Manager: read once (at cold start), and again when refreshed. */
export function secretToken(client: SecretsManagerClient, secretId: string): GitHubToken {
  let current: Promise<string | undefined> | undefined;
  const read = () =>
    client.send(new GetSecretValueCommand({ SecretId: secretId })).then((answer) => answer.SecretString);
  return {
    get: () => {
      current ??= read();
      return current;
    },
    refresh: () => {
      current = read();
      return current;
    },
  };
}

const statusOf = (error: unknown): number | undefined =>
  inCauses(error, (e: { status?: unknown }) => (typeof e.status === 'number' ? e.status : undefined));

/** Runs a GitHub call with the token; after a 401 it reads the token again and tries once more. */
export async function withGitHubToken<T>(
  token: GitHubToken | undefined,
  call: (token: string | undefined) => Promise<T>,
): Promise<T> {
  try {
    return await call(await token?.get());
  } catch (error) {
    if (!token || statusOf(error) !== 401) throw error;
    return call(await token.refresh());
  }
}
