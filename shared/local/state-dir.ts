import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, resolve, sep } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { dynamoState, ensureTable } from '../adapters/dynamo/index.js';
import {
  type EmbeddedDynamo,
  embeddedDynamoClient,
  startEmbeddedDynamo,
} from '../adapters/embedded-dynamo.js';
import { FolderWorkspaceStore } from '../adapters/folder-workspace.js';
import { LocalQueue } from '../adapters/local-queue.js';
import { type AgentConfig, DEFAULT_AGENT } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';
import { sleep } from '../domain/sleep.js';
import type { QueueAdmin } from '../ports/queue.js';
import type { StatePort } from '../ports/state.js';
import { localQueueAdmin, remoteQueueAdmin, serveQueueAdmin } from './live-routes.js';

export const LOCAL_TABLE = 'fanout-state';

/** The run `fanout run` (with no issues given) resumes, and its agent settings. */
export interface CurrentRun {
  readonly runId: string;
  readonly agent: AgentConfig;
  readonly finished: boolean;
  /** The run's budget, kept apart from the state table: a lost table never means a new budget. */
  readonly budgetMicros?: number;
}

/** A state dir opened for a command: the engine's state, the queue, the workspaces. */
export interface LocalStateDir {
  readonly stateDir: string;
  readonly client: DynamoDBClient;
  readonly state: StatePort;
  readonly workspaces: FolderWorkspaceStore;
  /** The queue, directly or through the live run. */
  readonly queue: QueueAdmin;
  /** The queue itself, when this command holds the state dir (no live run). */
  readonly journal?: LocalQueue;
  /** True when a `fanout run` owns the state dir and this command goes through it. */
  readonly live: boolean;
  close(): Promise<void>;
}

interface LiveEndpoints {
  readonly pid: number;
  readonly dynamoEndpoint: string;
  readonly controlEndpoint: string;
}

/**
 * A path inside the state dir. Every file fanout keeps there is named through this one
 * function, which refuses a part that would lead outside it (`..`, an absolute path).
 */
export function statePath(stateDir: string, ...parts: string[]): string {
  const root = resolve(stateDir);
  const path = resolve(root, ...parts);
  if (path !== root && !path.startsWith(`${root}${sep}`)) {
    throw new FanoutError(
      'INVALID_INPUT',
      `"${parts.join('/')}" would lead outside the state dir ${stateDir}`,
    );
  }
  return path;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export const readCurrentRun = (stateDir: string) =>
  readJson<CurrentRun>(statePath(stateDir, 'current-run.json'));

export function writeCurrentRun(stateDir: string, run: CurrentRun): void {
  writeJsonAtomic(statePath(stateDir, 'current-run.json'), run);
}

/** Makes `runId` the run `fanout run` resumes, keeping its agent settings if it had some. */
export function adoptRun(stateDir: string, runId: string, budgetMicros?: number): void {
  const current = readCurrentRun(stateDir);
  const same = current?.runId === runId;
  const budget = budgetMicros ?? (same ? current.budgetMicros : undefined);
  writeCurrentRun(stateDir, {
    runId,
    agent: same ? current.agent : DEFAULT_AGENT,
    finished: false,
    ...(budget !== undefined ? { budgetMicros: budget } : {}),
  });
}

/** File systems made by the kernel (/proc, /sys, ...): nothing can be kept there. */
const VIRTUAL_FILE_SYSTEMS = new Set([
  0x9fa0 /* proc */, 0x62656572 /* sysfs */, 0x1cd1 /* devpts */, 0x64626720 /* debugfs */,
  0x27e0eb /* cgroup */, 0x63677270 /* cgroup2 */,
]);

const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'it is on a read-only file system',
  ENOSPC: 'the disk is full',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'it is a file, not a folder',
};

/** Fails fast, before anything is written, when the state dir cannot hold a run; says why in words. */
export function checkStateDir(stateDir: string): void {
  const refuse = (why: string, cause?: unknown) =>
    new FanoutError(
      'STATE_DIR_NOT_WRITABLE',
      `state dir "${stateDir}" cannot be used: ${why}. Choose another with --state-dir, or fix it`,
      cause === undefined ? {} : { cause },
    );
  // The nearest part of the path that exists decides what can be made below it.
  let existing = resolve(stateDir);
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const info = statSync(existing);
  if (!info.isDirectory()) {
    throw refuse(
      existing === resolve(stateDir) ? 'it is a file, not a folder' : `${existing} is a file, not a folder`,
    );
  }
  if (VIRTUAL_FILE_SYSTEMS.has(statfsSync(existing).type)) {
    throw refuse(
      `${existing} is on a file system the kernel makes up (like /proc), where nothing can be kept`,
    );
  }
  try {
    mkdirSync(stateDir, { recursive: true });
    const probe = statePath(stateDir, `.write-test-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    throw refuse(ERRNO_WORDS[code] ?? `it is not writable (${code || String(error)})`, error);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface LockHolder {
  readonly pid: number;
  readonly command: string;
  readonly since: number;
}

/**
 * Takes the state dir for one command (`fanout run`, or `send`/`status`/`report`/`repair`
 * opening it themselves): a lock file made with O_EXCL, naming its holder. A lock whose
 * process is gone is taken over. Returns the release.
 */
export function lockStateDir(stateDir: string, command: string): () => void {
  const file = statePath(stateDir, 'lock');
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, command, since: Date.now() } satisfies LockHolder));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readJson<LockHolder>(file);
      if (holder && alive(holder.pid) && holder.pid !== process.pid) {
        throw new FanoutError(
          'INVALID_INPUT',
          `the state dir ${stateDir} is in use by \`fanout ${holder.command}\` (pid ${holder.pid}, since ` +
            `${new Date(holder.since).toISOString()}). ${holder.command === 'run' ? 'While it runs, `fanout send --local`, `status` and `report` go through it; ' : ''}` +
            'wait for it to end, or use another --state-dir.',
        );
      }
      rmSync(file, { force: true }); // its holder is gone
    }
  }
  throw new FanoutError('STATE_UNAVAILABLE', `cannot take the lock ${file}`);
}

/** How long a command waits for a `fanout run` that is starting or ending to settle. */
const TRANSITION_WAIT_MS = 30_000;

/** A live `fanout run` holds the lock but serves no live.json: it is starting or ending. */
function runInTransition(stateDir: string): boolean {
  const holder = readJson<LockHolder>(statePath(stateDir, 'lock'));
  return !!holder && holder.command === 'run' && holder.pid !== process.pid && alive(holder.pid);
}

/** Starts the embedded engine on the state dir, holding the dir's lock until closed. */
export async function startEngine(stateDir: string, command: string): Promise<EmbeddedDynamo> {
  const release = lockStateDir(stateDir, command);
  const dynamoDir = statePath(stateDir, 'dynamodb');
  mkdirSync(dynamoDir, { recursive: true });
  const engine = await startEmbeddedDynamo(dynamoDir).catch((error: unknown) => {
    release();
    throw new FanoutError(
      'STATE_UNAVAILABLE',
      `cannot open the state in "${dynamoDir}": ${(error as Error).message}`,
      { cause: error },
    );
  });
  return {
    endpoint: engine.endpoint,
    handle: engine.handle,
    close: async () => {
      await engine.close();
      release();
    },
  };
}

/** The live `fanout run` that owns the state dir, if one is running. */
export function liveRun(stateDir: string): LiveEndpoints | undefined {
  const live = readJson<LiveEndpoints>(statePath(stateDir, 'live.json'));
  return live && alive(live.pid) ? live : undefined;
}

/**
 * Opens a state dir for `send`, `status` or `report`. While a `fanout run` owns it,
 * they go through that run's engine and queue (so a backlog can be watched and added
 * to as it runs); otherwise they open it themselves.
 */
export async function openStateDir(
  stateDir: string,
  options: {
    create: boolean;
    command?: string;
    /** For `fanout repair`: refuse a live run, and open a damaged journal by salvaging what is readable. */
    repair?: boolean;
  },
): Promise<LocalStateDir> {
  const command = options.command ?? 'status';
  if (!options.create && !existsSync(statePath(stateDir, 'dynamodb'))) {
    throw new FanoutError(
      'INVALID_INPUT',
      `no local state in "${stateDir}": start a run with fanout run, or send to it with fanout send --local`,
    );
  }
  checkStateDir(stateDir);
  const workspaces = new FolderWorkspaceStore(statePath(stateDir, 'workspaces'));
  // A `fanout run` holds the lock a moment before it serves live.json and a moment after it
  // stops serving (its report, its engine closing): wait out that window, then either go
  // through the run or open the dir once the run has let it go.
  const until = Date.now() + TRANSITION_WAIT_MS;
  let live = liveRun(stateDir);
  while (!live && runInTransition(stateDir) && Date.now() < until) {
    await sleep(100);
    live = liveRun(stateDir);
  }
  if (live && options.repair) {
    throw new FanoutError(
      'INVALID_INPUT',
      `a fanout run is using ${stateDir}: stop it (Ctrl-C) before repairing`,
    );
  }
  if (live) {
    const client = embeddedDynamoClient(live.dynamoEndpoint);
    return {
      stateDir,
      client,
      state: dynamoState({ tableName: LOCAL_TABLE, client }),
      workspaces,
      queue: remoteQueueAdmin(live.controlEndpoint),
      live: true,
      close: async () => client.destroy(),
    };
  }
  const engine = await startEngine(stateDir, command);
  const client = embeddedDynamoClient(engine.endpoint);
  let queue: LocalQueue;
  try {
    await ensureTable(client, LOCAL_TABLE);
    queue = LocalQueue.open(statePath(stateDir, 'queue'), {
      visibilityTimeoutMs: 300_000,
      maxReceiveCount: 3,
      ...(options.repair ? { salvage: true } : {}),
    });
  } catch (error) {
    client.destroy();
    await engine.close();
    throw error;
  }
  return {
    stateDir,
    client,
    state: dynamoState({ tableName: LOCAL_TABLE, client }),
    workspaces,
    queue: localQueueAdmin(queue),
    journal: queue,
    live: false,
    close: async () => {
      queue.close();
      client.destroy();
      await engine.close();
    },
  };
}

/**
 * Serves the live run's queue on loopback to the other fanout commands, and says
 * where in `live.json`. Returns a function that stops serving and removes the file.
 */
export async function serveLive(
  stateDir: string,
  queue: LocalQueue,
  dynamoEndpoint: string,
): Promise<() => Promise<void>> {
  const server: Server = createServer(serveQueueAdmin(localQueueAdmin(queue)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const controlEndpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file = statePath(stateDir, 'live.json');
  writeJsonAtomic(file, { pid: process.pid, dynamoEndpoint, controlEndpoint } satisfies LiveEndpoints);
  return async () => {
    rmSync(file, { force: true });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}
