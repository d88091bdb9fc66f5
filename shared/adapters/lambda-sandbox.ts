import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import * as tar from 'tar';
import type { SandboxInvocation, SandboxReply } from '../contracts/sandbox-protocol.js';
import { FanoutError } from '../domain/errors.js';
import type { CommandResult, RoomOwner, Sandbox, SandboxIsolation, SandboxRoom } from '../ports/sandbox.js';

export interface LambdaSandboxOptions {
  readonly lambda: Pick<LambdaClient, 'send'>;
  /** The sandbox function (its name or ARN). */
  readonly functionName: string;
  /** The worker's S3 settings: a client from them stores the files, another signs the URLs. */
  readonly s3: S3ClientConfig;
  readonly bucket: string;
  /** Where the worker keeps its copy of each room's files. */
  readonly scratch: string;
  /** @default 300 s more than the command's time limit */
  readonly urlLifetimeSeconds?: (timeLimitMs: number) => number;
}

/** The most a presigned URL of a command lives: its time limit (at most 10 minutes) and 5 minutes to move the files. */
const urlLifetime = (timeLimitMs: number) => Math.min(900, Math.ceil(timeLimitMs / 1000) + 300);

/**
 * The worker's side of the sandbox function. A room is a folder of the worker holding the
 * repository's files; each command ships them to S3 under the job's prefix
 * (`<job>/sandbox/<room>/`), invokes the function with presigned URLs for exactly the
 * objects it reads and writes, and takes the repository's files back from its answer. The
 * room's other folders (dependencies, builds) stay in S3 from one command to the next.
 */
export class LambdaSandbox implements Sandbox {
  private readonly s3: S3Client;
  /**
   * AWS rule: a presigned PUT must carry no checksum. The SDK's default adds the CRC32 of
   * the empty body it signs, and S3 refuses the real upload (BadDigest); s3rver does not
   * check. The signing client computes checksums only when an operation requires one.
   */
  private readonly presigner: S3Client;

  constructor(private readonly options: LambdaSandboxOptions) {
    this.s3 = new S3Client(options.s3);
    this.presigner = new S3Client({ ...options.s3, requestChecksumCalculation: 'WHEN_REQUIRED' });
  }

  async isolation(): Promise<SandboxIsolation> {
    return 'function';
  }

  async open(owner: RoomOwner): Promise<SandboxRoom> {
    const { options } = this;
    await mkdir(options.scratch, { recursive: true });
    const local = await mkdtemp(join(options.scratch, 'sandbox-'));
    const dir = join(local, 'repo');
    await mkdir(dir);
    const prefix = `${owner.jobPrefix}sandbox/${randomUUID()}/`;
    let commands = 0;
    const get = (key: string, seconds: number) =>
      getSignedUrl(this.presigner, new GetObjectCommand({ Bucket: options.bucket, Key: key }), {
        expiresIn: seconds,
      });
    const put = (key: string, seconds: number) =>
      getSignedUrl(this.presigner, new PutObjectCommand({ Bucket: options.bucket, Key: key }), {
        expiresIn: seconds,
      });
    return {
      dir,
      run: async (request): Promise<CommandResult> => {
        const n = commands++;
        const timeLimitMs = request.timeLimitMs ?? 120_000;
        const seconds = (options.urlLifetimeSeconds ?? urlLifetime)(timeLimitMs);
        const archive = join(local, 'transfer.tgz');
        await tar.c({ gzip: true, cwd: dir, file: archive, portable: true }, ['.']);
        await this.s3.send(
          new PutObjectCommand({
            Bucket: options.bucket,
            Key: `${prefix}files-${n}.tgz`,
            Body: await readFile(archive),
          }),
        );
        const invocation: SandboxInvocation = {
          v: 1,
          command: request.command,
          ...(request.cwd ? { cwd: request.cwd } : {}),
          timeLimitMs,
          urls: {
            files: await get(`${prefix}files-${n}.tgz`, seconds),
            ...(n > 0 ? { stateIn: await get(`${prefix}state-${n - 1}.tgz`, seconds) } : {}),
            stateOut: await put(`${prefix}state-${n}.tgz`, seconds),
            result: await put(`${prefix}result-${n}.tgz`, seconds),
          },
        };
        const answer = await options.lambda.send(
          new InvokeCommand({ FunctionName: options.functionName, Payload: JSON.stringify(invocation) }),
        );
        const payload = answer.Payload ? Buffer.from(answer.Payload).toString('utf8') : '';
        if (answer.FunctionError) {
          let message = payload;
          try {
            message = (JSON.parse(payload) as { errorMessage?: string }).errorMessage ?? payload;
          } catch {
            // not JSON: the raw answer
          }
          throw new FanoutError('SANDBOX_FAILED', `the sandbox function failed: ${message.slice(0, 500)}`);
        }
        const reply = JSON.parse(payload) as SandboxReply;
        // The repository's files after the command replace the worker's copy.
        const result = await this.s3.send(
          new GetObjectCommand({ Bucket: options.bucket, Key: `${prefix}result-${n}.tgz` }),
        );
        await writeFile(
          archive,
          await (result.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
        );
        for (const entry of await readdir(dir)) await rm(join(dir, entry), { recursive: true, force: true });
        await tar.x({ cwd: dir, file: archive });
        await rm(archive, { force: true });
        return reply.result;
      },
      // The objects stay until the bucket's lifecycle expires the run (the worker may not delete).
      dispose: () => rm(local, { recursive: true, force: true }),
    };
  }
}
