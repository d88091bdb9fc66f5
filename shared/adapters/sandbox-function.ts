import { randomUUID } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import { NOT_COPIED_BACK } from '../agents/sandbox-copy.js';
import {
  type SandboxInvocation,
  SandboxInvocationSchema,
  type SandboxReply,
} from '../contracts/sandbox-protocol.js';
import { FanoutError } from '../domain/errors.js';
import { ProcessSandbox, type SandboxLimits } from './process-sandbox.js';
import { emptyDirectory } from './scratch-dir.js';

export interface SandboxFunctionOptions {
  /**
   * The function's only writable folder (/tmp on Lambda). Emptied before and after every
   * command: an execution environment Lambda reuses keeps /tmp, and one job's files must
   * not be there for the next job's command.
   */
  readonly scratch: string;
  readonly limits?: Partial<SandboxLimits>;
  readonly fetch?: typeof fetch;
}

/**
 * The sandbox function's work for one command: fetch the room (the previous command's
 * state, then the repository's files as the worker has them), run the command with an
 * empty environment and the limits, and send the room and the repository's files back,
 * each through its presigned URL. Nothing of the job stays behind.
 */
export async function runSandboxInvocation(
  input: unknown,
  options: SandboxFunctionOptions,
): Promise<SandboxReply> {
  const started = performance.now();
  const parsed = SandboxInvocationSchema.safeParse(input);
  if (!parsed.success) {
    throw new FanoutError('INVALID_INPUT', `not a sandbox invocation: ${parsed.error.issues[0]?.message}`);
  }
  const request: SandboxInvocation = parsed.data;
  const http = options.fetch ?? fetch;
  await emptyDirectory(options.scratch);
  try {
    // No namespaces on Lambda, no prlimit binary: the function is the isolation, ulimit the limits.
    const sandbox = new ProcessSandbox({
      base: join(options.scratch, 'rooms'),
      atMost: 'none',
      limiter: 'ulimit',
      ...(options.limits ? { limits: options.limits } : {}),
    });
    const room = await sandbox.open();
    const archive = join(options.scratch, `transfer-${randomUUID()}.tgz`);
    if (request.urls.stateIn) {
      await download(http, request.urls.stateIn, archive);
      await tar.x({ cwd: room.dir, file: archive });
      // The worker's files are the repository's truth: what it removed goes.
      await removeRepositoryFiles(room.dir);
    }
    await download(http, request.urls.files, archive);
    await tar.x({ cwd: room.dir, file: archive });

    const result = await room.run({
      command: request.command,
      ...(request.cwd ? { cwd: request.cwd } : {}),
      timeLimitMs: request.timeLimitMs,
    });

    await tar.c({ gzip: true, cwd: room.dir, file: archive, portable: true }, ['.']);
    await upload(http, request.urls.stateOut, archive);
    await tar.c(
      {
        gzip: true,
        cwd: room.dir,
        file: archive,
        portable: true,
        filter: (path) => !path.split('/').some((part) => NOT_COPIED_BACK.has(part)),
      },
      ['.'],
    );
    await upload(http, request.urls.result, archive);
    return { v: 1, result: { ...result, billedMs: Math.round(performance.now() - started) } };
  } finally {
    await emptyDirectory(options.scratch);
  }
}

async function download(http: typeof fetch, url: string, file: string): Promise<void> {
  const response = await http(url);
  if (!response.ok) {
    throw new FanoutError(
      'SANDBOX_FAILED',
      `the sandbox could not fetch the job's files: HTTP ${response.status} (a presigned URL expired or was refused)`,
    );
  }
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
}

async function upload(http: typeof fetch, url: string, file: string): Promise<void> {
  const response = await http(url, { method: 'PUT', body: await readFile(file) });
  if (!response.ok) {
    throw new FanoutError(
      'SANDBOX_FAILED',
      `the sandbox could not store the job's files: HTTP ${response.status} ${(await response.text()).slice(0, 300)}`,
    );
  }
}

/** Every file of the room outside the folders that are not the change. */
async function removeRepositoryFiles(root: string): Promise<void> {
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!NOT_COPIED_BACK.has(entry.name)) await walk(path);
      } else {
        await rm(path, { force: true });
      }
    }
  };
  await walk(root);
}
