/**
 * A job's own storage: an S3 prefix on AWS, a folder locally. Paths are relative
 * to the job's prefix; anything that would leave it is refused.
 */
export interface Workspace {
  /** The job's prefix, e.g. `runs/r1/jobs/owner/repo/12/`. */
  readonly prefix: string;
  /** Where a person finds the files (a folder path or an s3:// URL). */
  readonly location: string;
  write(path: string, data: string | Uint8Array): Promise<void>;
  read(path: string): Promise<Uint8Array | undefined>;
  list(): Promise<string[]>;
  remove(path: string): Promise<void>;
}

/**
 * The layout of a job's workspace that the agents and the GitHub adapters share: the
 * repository's snapshot (and the agent's changes to it) live under this folder.
 */
export const REPO_DIR = 'repo';

export interface WorkspaceStore {
  open(prefix: string): Workspace;
}
