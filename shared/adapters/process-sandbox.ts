import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmod, lchown, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FanoutError } from '../domain/errors.js';
import { safeRelativePath } from '../domain/workspace-path.js';
import type {
  CommandRequest,
  CommandResult,
  RoomOwner,
  Sandbox,
  SandboxIsolation,
  SandboxRoom,
} from '../ports/sandbox.js';

export interface SandboxLimits {
  /** Wall time of a command when its request names none. */
  readonly timeMs: number;
  /** Data segment and private writable memory of each process (RLIMIT_DATA). */
  readonly memoryBytes: number;
  /** Processes of the room's user at once (RLIMIT_NPROC): a fork bomb's ceiling. */
  readonly processes: number;
  /** Output a command may write before it is stopped. */
  readonly outputBytes: number;
  /** The largest file a command may write (RLIMIT_FSIZE). */
  readonly fileBytes: number;
  /** Of a long output, this much of its head and of its tail are kept. */
  readonly keptBytes: number;
}

export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  timeMs: 120_000,
  memoryBytes: 2 * 1024 ** 3,
  processes: 256,
  outputBytes: 16 * 1024 ** 2,
  fileBytes: 256 * 1024 ** 2,
  keptBytes: 16 * 1024,
};

export interface ProcessSandboxOptions {
  /**
   * Folders a command must not see (the state dir, the worker's home): with full isolation
   * each is covered by an empty file system in the command's own mount namespace.
   */
  readonly hide?: readonly string[];
  readonly limits?: Partial<SandboxLimits>;
  /** Where rooms are made. @default the system's temporary folder */
  readonly base?: string;
  /** The most isolation to use: a test of a weaker level asks for it. @default 'full' */
  readonly atMost?: SandboxIsolation;
  /**
   * How the limits are set without isolation: util-linux's `prlimit`, or bash's `ulimit`
   * where prlimit is not installed (a Lambda runtime). @default 'prlimit'
   */
  readonly limiter?: 'prlimit' | 'ulimit';
}

/**
 * `--sandbox strict` runs commands only where their network is isolated: refused, saying
 * what to do, on a machine that gives no isolation.
 */
export function refuseUnisolated(mode: 'auto' | 'strict', isolation: SandboxIsolation): void {
  if (mode !== 'strict' || isolation === 'full' || isolation === 'network') return;
  if (isolation === 'function')
    throw new FanoutError(
      'SANDBOX_FAILED',
      "--sandbox strict: the stack's sandbox function does not isolate the network of a command " +
        '(no credential is reachable from it, but it can connect out): use --sandbox auto',
    );
  throw new FanoutError(
    'SANDBOX_FAILED',
    '--sandbox strict: this machine cannot isolate the network of a command (no namespaces): ' +
      'run as root or with unprivileged user namespaces, or use --sandbox auto',
  );
}

/** Rooms' user ids (full isolation) are drawn above every ordinary account's. */
const ROOM_UID_BASE = 3_000_000;
const PATH = '/usr/local/bin:/usr/bin:/bin';
const LEVELS: readonly SandboxIsolation[] = ['full', 'network', 'none'];
/** unshare's flags for each isolation: as root, every namespace; otherwise a user namespace. */
const FULL_NAMESPACES = ['--mount', '--net', '--pid', '--ipc', '--uts', '--fork', '--mount-proc'];
const USER_NAMESPACES = ['--user', '--map-root-user', '--net', '--pid', '--fork', '--mount-proc'];

/**
 * Runs a room's commands as child processes of this machine, isolated as far as the
 * machine allows (SandboxIsolation): an empty environment (PATH, HOME and TMPDIR in the
 * room, LANG), no inherited descriptors, a process group killed whole at the time limit,
 * and resource limits set with prlimit. With `full` isolation (this process is root and
 * the kernel has namespaces) a command runs in new network, PID, mount, IPC and UTS
 * namespaces, as a user id no other room has, with umask 077, the hidden folders covered.
 */
export class ProcessSandbox implements Sandbox {
  private readonly limits: SandboxLimits;
  private found: Promise<SandboxIsolation> | undefined;

  constructor(private readonly options: ProcessSandboxOptions = {}) {
    this.limits = { ...DEFAULT_SANDBOX_LIMITS, ...options.limits };
  }

  isolation(): Promise<SandboxIsolation> {
    this.found ??= Promise.resolve(probe(this.options.atMost ?? 'full'));
    return this.found;
  }

  async open(_owner?: RoomOwner): Promise<SandboxRoom> {
    const isolation = await this.isolation();
    const base = resolve(this.options.base ?? join(tmpdir(), 'fanout-sandbox'));
    await mkdir(base, { recursive: true });
    // Others may pass through the base to their own room, not list it.
    await chmod(base, 0o711);
    const room = await mkdtemp(join(base, 'room-'));
    const dir = join(room, 'work');
    const home = join(room, 'home');
    await mkdir(dir);
    await mkdir(home);
    const uid = isolation === 'full' ? ROOM_UID_BASE + randomInt(1_000_000) : undefined;
    return {
      dir,
      run: async (request) => {
        if (uid !== undefined) {
          // Files the worker wrote since the last command become the room user's.
          await chownTree(room, uid);
          await chmod(room, 0o700);
        }
        return this.run(isolation, { room, dir, home, uid }, request);
      },
      dispose: () => rm(room, { recursive: true, force: true }),
    };
  }

  private run(
    isolation: SandboxIsolation,
    room: { room: string; dir: string; home: string; uid: number | undefined },
    request: CommandRequest,
  ): Promise<CommandResult> {
    const cwd = request.cwd ? join(room.dir, safeRelativePath(request.cwd)) : room.dir;
    const timeMs = request.timeLimitMs ?? this.limits.timeMs;
    const env = { PATH, HOME: room.home, TMPDIR: room.home, LANG: 'C.UTF-8' };
    const limits = prlimitArgs(this.limits, timeMs);
    let file: string;
    let args: string[];
    if (isolation === 'full') {
      // As root inside the new namespaces: cover the hidden folders, then drop to the room's
      // user with nothing else and exec the command under its limits.
      const setup =
        'uid=$1; cwd=$2; cmd=$3; shift 3; ' +
        'for p in "$@"; do if [ -d "$p" ]; then mount -t tmpfs -o size=64k,mode=0755 fanout-hidden "$p" || exit 125; fi; done; ' +
        'cd "$cwd" || exit 125; umask 077; ' +
        `exec env -i PATH=${PATH} HOME="${room.home}" TMPDIR="${room.home}" LANG=C.UTF-8 ` +
        'setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs -- ' +
        `prlimit ${limits.join(' ')} -- /bin/sh -c "$cmd"`;
      file = 'unshare';
      args = [
        ...FULL_NAMESPACES,
        '--kill-child',
        '--',
        '/bin/sh',
        '-c',
        setup,
        'fanout-sandbox',
        String(room.uid),
        cwd,
        request.command,
        ...(this.options.hide ?? []).map((p) => resolve(p)),
      ];
    } else if (isolation === 'network') {
      file = 'unshare';
      args = [
        ...USER_NAMESPACES,
        '--kill-child',
        '--',
        'prlimit',
        ...limits,
        '--',
        '/bin/sh',
        '-c',
        request.command,
      ];
    } else if (this.options.limiter === 'ulimit') {
      file = '/bin/bash';
      args = ['-c', `${ulimits(this.limits, timeMs)}; exec /bin/sh -c "$0"`, request.command];
    } else {
      file = 'prlimit';
      args = [...limits, '--', '/bin/sh', '-c', request.command];
    }
    return collect(file, args, { cwd, env, timeMs, limits: this.limits });
  }
}

/** prlimit's flags: CPU seconds a little over the wall time, memory, processes, file size, no core files. */
function prlimitArgs(limits: SandboxLimits, timeMs: number): string[] {
  return [
    `--cpu=${Math.ceil(timeMs / 1000) + 1}`,
    `--data=${limits.memoryBytes}`,
    `--nproc=${limits.processes}`,
    `--fsize=${limits.fileBytes}`,
    '--core=0',
  ];
}

/** The same limits as bash's ulimit (-t seconds, -d KiB, -u processes, -f KiB outside POSIX mode, -c). */
function ulimits(limits: SandboxLimits, timeMs: number): string {
  return [
    `ulimit -t ${Math.ceil(timeMs / 1000) + 1}`,
    `ulimit -d ${Math.floor(limits.memoryBytes / 1024)}`,
    `ulimit -u ${limits.processes}`,
    `ulimit -f ${Math.floor(limits.fileBytes / 1024)}`,
    'ulimit -c 0',
  ].join(' && ');
}

/** Runs the command in its own process group, keeping the head and tail of its output. */
function collect(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeMs: number; limits: SandboxLimits },
): Promise<CommandResult> {
  const started = performance.now();
  const { keptBytes, outputBytes } = options.limits;
  return new Promise((done, fail) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let head = Buffer.alloc(0);
    let tail = Buffer.alloc(0);
    let total = 0;
    let stoppedBy: CommandResult['stoppedBy'];
    const stop = (why: NonNullable<CommandResult['stoppedBy']>) => {
      stoppedBy ??= why;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => stop('time'), options.timeMs);
    const take = (chunk: Buffer) => {
      total += chunk.length;
      if (head.length < keptBytes) head = Buffer.concat([head, chunk.subarray(0, keptBytes - head.length)]);
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > keptBytes) tail = tail.subarray(tail.length - keptBytes);
      if (total > outputBytes) stop('output');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (error) => {
      clearTimeout(timer);
      fail(new FanoutError('SANDBOX_FAILED', `could not start ${file}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const truncated = total > 2 * keptBytes;
      const output = truncated
        ? `${head.toString('utf8')}\n[... ${total - 2 * keptBytes} bytes left out ...]\n${tail.toString('utf8')}`
        : total > keptBytes
          ? Buffer.concat([head, tail.subarray(Math.max(0, tail.length - (total - keptBytes)))]).toString(
              'utf8',
            )
          : head.toString('utf8');
      done({
        exitCode: code,
        signal,
        output,
        outputBytes: total,
        truncated,
        durationMs: Math.round(performance.now() - started),
        ...(stoppedBy ? { stoppedBy } : {}),
      });
    });
  });
}

/** Gives every file and folder under `dir` to `uid` (not following links). */
async function chownTree(dir: string, uid: number): Promise<void> {
  await lchown(dir, uid, uid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid);
    else await lchown(path, uid, uid);
  }
}

/** The strongest isolation, at most `atMost`, that a probe command gets on this machine. */
function probe(atMost: SandboxIsolation): SandboxIsolation {
  const works = (args: string[]) =>
    spawnSync('unshare', [...args, '--', 'prlimit', '--nproc=8', '--', 'true'], {
      env: { PATH },
      stdio: 'ignore',
      timeout: 10_000,
    }).status === 0;
  const uid = String(ROOM_UID_BASE);
  for (const level of LEVELS.slice(LEVELS.indexOf(atMost))) {
    if (level === 'none') return 'none';
    if (level === 'full' && process.getuid?.() !== 0) continue;
    const drop = level === 'full' ? ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'] : [];
    // unshare ... [-- setpriv ...] -- prlimit -- true: the whole chain a command goes through.
    const chain = level === 'full' ? [...FULL_NAMESPACES, '--', ...drop] : USER_NAMESPACES;
    if (works(chain)) return level;
  }
  return 'none';
}
