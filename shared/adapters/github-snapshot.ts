import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { FanoutError } from '../domain/errors.js';
import { REPO_DIR, type Workspace } from '../ports/workspace.js';
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
  /** Where the archive is streamed to before it is unpacked. @default the OS temp dir */
  readonly scratchDir?: string;
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

/** Counts bytes passing through, and fails the stream once they exceed `max`. */
function capped(max: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max)
        done(new FanoutError('AGENT_FAILED', `${what} is larger than a snapshot may be (${max} bytes)`));
      else done(null, chunk);
    },
  });
}

/** The tar entries of an archive on disk, read header by header (never the whole archive in memory). */
async function* tarEntries(file: string): AsyncGenerator<TarEntry> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(512);
    let offset = 0;
    let paxPath: string | undefined;
    for (;;) {
      const { bytesRead } = await handle.read(header, 0, 512, offset);
      if (bytesRead < 512 || header.every((byte) => byte === 0)) return;
      const size = Number.parseInt(field(header, 124, 12).trim() || '0', 8);
      const type = field(header, 156, 1) || '0';
      const prefix = field(header, 345, 155);
      const name = field(header, 0, 100);
      const data = Buffer.alloc(size);
      if (size > 0) await handle.read(data, 0, size, offset + 512);
      offset += 512 + Math.ceil(size / 512) * 512;
      if (type === 'x') {
        paxPath = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
        continue;
      }
      if (type === 'g') continue; // GitHub's global header: the commit id
      yield { path: paxPath ?? (prefix ? `${prefix}/${name}` : name), type, data };
      paxPath = undefined;
    }
  } finally {
    await handle.close();
  }
}

/**
 * Puts a repository's files into the job's workspace under `repo/`, from GitHub's
 * tarball of the ref. The worker does this with its token; the agent only ever sees
 * the files. The archive is streamed to a scratch file, its size capped while it
 * streams (compressed and unpacked, so a gzip bomb stops early), then read entry by
 * entry. Only regular files are kept (no links); every path goes through the
 * workspace's checks, so an archive cannot write outside the job's prefix.
 */
export async function fetchSnapshot(repo: string, workspace: Workspace, options: SnapshotOptions = {}) {
  const [owner, name] = repo.split('/');
  if (!owner || !name) throw new FanoutError('INVALID_INPUT', `a snapshot needs owner/repo, not "${repo}"`);
  const maxBytes = options.maxBytes ?? 50_000_000;
  const maxFiles = options.maxFiles ?? 5000;
  const octokit = githubClient(options);
  const dir = await mkdtemp(join(options.scratchDir ?? tmpdir(), 'fanout-snapshot-'));
  const file = join(dir, 'snapshot.tar');
  try {
    try {
      const response = await octokit.request('GET /repos/{owner}/{repo}/tarball/{ref}', {
        owner,
        repo: name,
        ref: options.ref ?? '',
        request: { parseSuccessResponseBody: false },
      });
      const body = response.data as unknown as ReadableStream<Uint8Array>;
      await pipeline(
        Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>),
        capped(maxBytes, `the archive of ${repo}`),
        createGunzip(),
        capped(maxBytes, repo),
        createWriteStream(file),
      );
    } catch (error) {
      if (error instanceof FanoutError) throw error;
      const status = (error as { status?: number }).status;
      throw new FanoutError(
        'AGENT_FAILED',
        status === 404
          ? `the snapshot of ${repo}${options.ref ? `@${options.ref}` : ''} was not found, or the token cannot see it`
          : `cannot fetch the snapshot of ${repo}: ${(error as Error).message}`,
        { cause: error, retryable: status === undefined || status >= 500 },
      );
    }
    let files = 0;
    let bytes = 0;
    for await (const entry of tarEntries(file)) {
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
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
