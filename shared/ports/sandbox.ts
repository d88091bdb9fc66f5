/**
 * Where an agent's commands run: a room holding a copy of the job's repository, no
 * credential reachable from it, and limits on time, CPU, memory, processes, output and
 * file size (README, "The sandbox").
 */

/**
 * What the machine allowed, strongest first:
 * - `full`: own network (none), PID and mount namespaces, a user id of its own per room,
 *   the worker's state and home hidden;
 * - `network`: own network and PID namespaces as the same user (an unprivileged user
 *   namespace): no network, but files the worker's user can read, the command can;
 * - `function`: a function of its own (the Lambda sandbox) whose role may do nothing but
 *   write its logs, with no secret or resource name in its environment, a fresh scratch
 *   folder per command; its network is not isolated;
 * - `none`: an emptied environment and the limits only.
 */
export type SandboxIsolation = 'full' | 'network' | 'function' | 'none';

export interface CommandRequest {
  /** A shell command line, run by /bin/sh. */
  readonly command: string;
  /** A folder inside the room, relative; the room's root when absent. */
  readonly cwd?: string;
  /** Wall time before the command and everything it started are killed. */
  readonly timeLimitMs?: number;
}

export interface CommandResult {
  /** Null when a signal ended it. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** Standard output and error as they came, the head and the tail kept when it was long. */
  readonly output: string;
  /** Every byte it wrote, kept or not. */
  readonly outputBytes: number;
  readonly truncated: boolean;
  readonly durationMs: number;
  /** Set when fanout stopped it: its time or its output ran out. */
  readonly stoppedBy?: 'time' | 'output';
  /**
   * The compute billed for it when more than its own duration: a sandbox function's whole
   * invocation, with the copying in and out. @default durationMs
   */
  readonly billedMs?: number;
}

/** The job a room is for: a sandbox that moves files through storage keeps them under its prefix. */
export interface RoomOwner {
  readonly jobPrefix: string;
}

/** One job's room: its files, and the commands run on them. */
export interface SandboxRoom {
  /** The folder whose files the commands see and change (the repository's copy). */
  readonly dir: string;
  run(request: CommandRequest): Promise<CommandResult>;
  /** Removes the room and everything in it. */
  dispose(): Promise<void>;
}

export interface Sandbox {
  /** The isolation this machine gives, found once (it starts a probe command). */
  isolation(): Promise<SandboxIsolation>;
  /** A new room for one job, reachable by its own commands only (with `full` isolation). */
  open(owner: RoomOwner): Promise<SandboxRoom>;
}
