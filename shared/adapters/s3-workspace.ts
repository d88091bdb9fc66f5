import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { FanoutError } from '../domain/errors.js';
import { safeRelativePath } from '../domain/workspace-path.js';
import type { Workspace, WorkspaceStore } from '../ports/workspace.js';

export interface S3WorkspaceOptions {
  readonly client: S3Client;
  readonly bucket: string;
}

const isAccessDenied = (error: unknown): boolean =>
  (error as Error)?.name === 'AccessDenied' ||
  (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 403;

/** Workspaces as S3 prefixes: `runs/{runId}/jobs/{owner}/{repo}/{number}/` in one bucket. */
export class S3WorkspaceStore implements WorkspaceStore {
  constructor(private readonly options: S3WorkspaceOptions) {}

  open(prefix: string): Workspace {
    return new S3Workspace(this.options, prefix.endsWith('/') ? prefix : `${prefix}/`);
  }
}

class S3Workspace implements Workspace {
  readonly location: string;

  constructor(
    private readonly options: S3WorkspaceOptions,
    readonly prefix: string,
  ) {
    this.location = `s3://${options.bucket}/${prefix}`;
  }

  private key(path: string): string {
    return `${this.prefix}${safeRelativePath(path)}`;
  }

  async write(path: string, data: string | Uint8Array): Promise<void> {
    await this.options.client.send(
      new PutObjectCommand({ Bucket: this.options.bucket, Key: this.key(path), Body: data }),
    );
  }

  async read(path: string): Promise<Uint8Array | undefined> {
    try {
      const object = await this.options.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.key(path) }),
      );
      return object.Body ? await object.Body.transformToByteArray() : new Uint8Array();
    } catch (error) {
      if (error instanceof NoSuchKey || (error as Error).name === 'NoSuchKey') return undefined;
      if (isAccessDenied(error)) return this.missingOrDenied(path, error);
      throw error;
    }
  }

  /**
   * S3 answers 403, not 404, for a missing key to a caller without s3:ListBucket on the
   * bucket. A list of the key tells the two apart: missing if the list is allowed and
   * does not show it; otherwise the worker lacks a permission, and the error says which.
   */
  private async missingOrDenied(path: string, denied: unknown): Promise<undefined> {
    const key = this.key(path);
    try {
      const page = await this.options.client.send(
        new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: key, MaxKeys: 1 }),
      );
      if (!page.Contents?.some((object) => object.Key === key)) return undefined;
    } catch (error) {
      if (!isAccessDenied(error)) throw error;
    }
    throw new FanoutError(
      'ACCESS_DENIED',
      `S3 refused to read s3://${this.options.bucket}/${key} (403): the role needs s3:GetObject on the ` +
        'object and s3:ListBucket on the bucket (without ListBucket, S3 answers 403 for a missing key)',
      { cause: denied },
    );
  }

  async list(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await this.options.client.send(
        new ListObjectsV2Command({
          Bucket: this.options.bucket,
          Prefix: this.prefix,
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? [])
        if (object.Key) keys.push(object.Key.slice(this.prefix.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async remove(path: string): Promise<void> {
    await this.options.client.send(
      new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.key(path) }),
    );
  }
}
