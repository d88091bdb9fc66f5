import { z } from 'zod';
import type { CommandResult } from '../ports/sandbox.js';

/**
 * What the worker sends the sandbox function (one command), and what it answers. The
 * function holds no credential and no resource name: it reaches the job's files only
 * through these presigned URLs, each for one object under the job's prefix, valid for
 * minutes.
 */
export const SandboxInvocationSchema = z.object({
  v: z.literal(1),
  command: z.string().min(1).max(100_000),
  /** A folder of the repository, relative; its root when absent. */
  cwd: z.string().min(1).max(1000).optional(),
  timeLimitMs: z.number().int().min(1).max(600_000),
  urls: z.object({
    /** GET: the repository's files as the worker has them (tar.gz). */
    files: z.url(),
    /** GET: the whole room after the previous command (its dependencies, builds); absent for the first. */
    stateIn: z.url().optional(),
    /** PUT: the whole room after this command. */
    stateOut: z.url(),
    /** PUT: the repository's files after this command, without the folders that are not the change. */
    result: z.url(),
  }),
});
export type SandboxInvocation = z.infer<typeof SandboxInvocationSchema>;

export interface SandboxReply {
  readonly v: 1;
  readonly result: CommandResult;
}
