import { gunzipSync } from 'node:zlib';
import { REPO_DIR } from '../agents/tools.js';
import { FanoutError } from '../domain/errors.js';
import type { Workspace } from '../ports/workspace.js';
import { githubClient } from './github-client.js';

export interface SnapshotOptions {
  /** Read by the worker, never handed to the agent. */
  readonly token?: string;
  readonly baseUrl?: string;
  /** The branch, tag or commit; the default branch when absent. */
  readonly ref?: string;
  /** @default 50 MB */
  readonly maxBytes?: number;
  /** @default 5,000 */
  readonly maxFiles?: number;
}

interface TarEntry {
  readonly path: string;
  readonly type: string;
  readonly data: Buffer;
}

const field = (block: Buffer, start: number, length: number) =>
  block
    .subarray(start, start + length)
    .toString('utf8')
    .replace(/\0.*$/s, '');

/** The entries of a tar archive (ustar, with pax path records), as GitHub's tarballs are. */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let paxPath: string | undefined;
  while (offset + 512 <= archive.length) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const size = Number.parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = field(header, 156, 1) || '0';
    const prefix = field(header, 345, 155);
    const name = field(header, 0, 100);
    const data = archive.subarray(offset + 512, offset + 512 + size);
    offset += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      // A pax record for the next entry: "<len> path=<value>\n".
      const match = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      paxPath = match?.[1];
      continue;
    }
    if (type === 'g') continue; // GitHub's global header: the commit id
    entries.push({ path: paxPath ?? (prefix ? `${prefix}/${name}` : name), type, data: Buffer.from(data) });
    paxPath = undefined;
  }
  return entries;
}

/**
 * Puts a repository's files into the job's workspace under `repo/`, from GitHub's
 * tarball of the ref. The worker does this with its token; the agent only ever sees
 * the files. Only regular files are kept (no links); every path goes through the
 * workspace's checks, so an archive cannot write outside the job's prefix.
 */
export async function fetchSnapshot(repo: string, workspace: Workspace, options: SnapshotOptions = {}) {
  const [owner, name] = repo.split('/');
  if (!owner || !name) throw new FanoutError('INVALID_INPUT', `a snapshot needs owner/repo, not "${repo}"`);
  const octokit = githubClient(options);
  let archive: Buffer;
  try {
    const response = await octokit.rest.repos.downloadTarballArchive({
      owner,
      repo: name,
      ref: options.ref ?? '',
    });
    archive = gunzipSync(Buffer.from(response.data as ArrayBuffer));
  } catch (error) {
    const status = (error as { status?: number }).status;
    throw new FanoutError(
      'AGENT_FAILED',
      status === 404
        ? `the snapshot of ${repo}${options.ref ? `@${options.ref}` : ''} was not found, or the token cannot see it`
        : `cannot fetch the snapshot of ${repo}: ${(error as Error).message}`,
      { cause: error, retryable: status === undefined || status >= 500 },
    );
  }
  const maxBytes = options.maxBytes ?? 50_000_000;
  const maxFiles = options.maxFiles ?? 5000;
  let files = 0;
  let bytes = 0;
  for (const entry of readTar(archive)) {
    if (entry.type !== '0') continue;
    // GitHub wraps everything in one folder named after the repository and commit.
    const path = entry.path.split('/').slice(1).join('/');
    if (!path) continue;
    files++;
    bytes += entry.data.length;
    if (files > maxFiles || bytes > maxBytes) {
      throw new FanoutError(
        'AGENT_FAILED',
        `${repo} is larger than a snapshot may be (${maxFiles} files, ${maxBytes} bytes)`,
      );
    }
    await workspace.write(`${REPO_DIR}/${path}`, entry.data);
  }
  return { files, bytes };
}
