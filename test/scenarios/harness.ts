import { appendFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dynamoState, ensureTable } from '../../shared/adapters/dynamo/index.js';
import { embeddedDynamoClient, startEmbeddedDynamo } from '../../shared/adapters/embedded-dynamo.js';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { LocalQueue } from '../../shared/adapters/local-queue.js';
import { type Issue, type JobMessage, jobKey, queueEntry } from '../../shared/domain/job.js';
import { processBatch, type WorkerDeps } from '../../shared/domain/worker.js';
import type { Agent } from '../../shared/ports/agent.js';
import type { BatchResponse, QueueRecord } from '../../shared/ports/queue.js';
import type { StatePort } from '../../shared/ports/state.js';

/** How many times each scenario runs (`npm run scenarios -- --repeat N`), and from which seed. */
export const REPEAT = Math.max(1, Number(process.env.FANOUT_SCENARIO_REPEAT ?? 1));
const BASE_SEED = Number(process.env.FANOUT_SCENARIO_SEED ?? 0);
let repetition = 0;

/** A scenario's seed for its random choices: its own on the first run, another on each repetition. */
export const scenarioSeed = (own: number): number => own + BASE_SEED * 1000 + repetition;

/** What one run of a scenario found against the invariants. */
export interface Tally {
  /** Jobs sent that did not end DONE, FAILED or SKIPPED. */
  lost: number;
  /** Jobs whose agent ran more than once at a time, or again after DONE. */
  doubled: number;
  /** 1 when spent + abandoned + reserved went over the budget. */
  overspent: number;
}

const figures = new Map<string, string>();
const tallies = new Map<string, Tally>();

function print(line: string): void {
  if (process.env.FANOUT_SCENARIO_OUT) appendFileSync(process.env.FANOUT_SCENARIO_OUT, `${line}\n`);
  else process.stdout.write(`${line}\n`);
}

/** Each scenario's figure, one line, for `npm run scenarios` to print as a table. */
export function record(
  scenario: string,
  figure: string,
  tally: Tally = { lost: 0, doubled: 0, overspent: 0 },
): void {
  figures.set(scenario, figure);
  const sum = tallies.get(scenario) ?? { lost: 0, doubled: 0, overspent: 0 };
  tallies.set(scenario, {
    lost: sum.lost + tally.lost,
    doubled: sum.doubled + tally.doubled,
    overspent: sum.overspent + tally.overspent,
  });
  if (REPEAT === 1) print(`${scenario.padEnd(28)} ${figure}`);
}

/**
 * Runs a scenario REPEAT times (its interleavings differ by timing and by its seed), and
 * prints runs, lost, doubled and overspent over all of them with the last run's figure.
 * Every run also asserts its invariants, so one that breaks fails with its reason.
 */
export function repeated(scenario: string, body: () => Promise<void>): () => Promise<void> {
  return async () => {
    for (repetition = 0; repetition < REPEAT; repetition++) {
      try {
        await body();
      } catch (error) {
        print(
          `${scenario.padEnd(28)} FAILED on run ${repetition + 1} of ${REPEAT}: ${(error as Error).message.split('\n')[0]}`,
        );
        throw error;
      }
    }
    repetition = 0;
    if (REPEAT > 1) {
      const t = tallies.get(scenario) ?? { lost: 0, doubled: 0, overspent: 0 };
      print(
        `${scenario.padEnd(28)} ${REPEAT} runs, ${t.lost} lost, ${t.doubled} doubled, ${t.overspent} overspent; last run: ${figures.get(scenario)}`,
      );
    }
  };
}

/** What the state table says of a run against the invariants; `runs` counts each job's agent runs. */
export async function audit(h: Harness, runs?: ReadonlyMap<string, number>): Promise<Tally> {
  const [jobs, run] = await Promise.all([h.state.listJobs(h.runId), h.state.getRun(h.runId)]);
  return {
    lost: jobs.filter((job) => job.status === 'PENDING' || job.status === 'RUNNING').length,
    doubled: runs ? [...runs.values()].filter((n) => n > 1).length : 0,
    overspent: run && run.spentMicros + run.abandonedMicros + run.reservedMicros > run.budgetMicros ? 1 : 0,
  };
}

export const silent = { info: () => {}, warn: () => {}, error: () => {} };

export const issues = (count: number, repo = 'acme/api', from = 1): Issue[] =>
  Array.from({ length: count }, (_, i) => ({
    repo,
    number: from + i,
    title: `Issue ${from + i}`,
    body: '',
    labels: [],
  }));

/** The value below which `share` (0-1) of the sorted values fall (nearest rank). */
export function percentile(sorted: readonly number[], share: number): number {
  return sorted[Math.max(0, Math.ceil(share * sorted.length) - 1)] ?? Number.NaN;
}

export const messageFor = (runId: string, issue: Issue, extra: Partial<JobMessage> = {}): string =>
  JSON.stringify({ v: 1, runId, issue, sentAt: Date.now(), ...extra } satisfies JobMessage);

export interface Harness {
  readonly runId: string;
  readonly state: StatePort;
  readonly queue: LocalQueue;
  readonly workspaces: FolderWorkspaceStore;
  readonly endpoint: string;
  /**
   * Registers the issues and sends each `copies` times, in its repository's fairness group
   * and with `extra` (a priority) in its message, as `fanout send` does.
   */
  send(list: readonly Issue[], copies?: number, extra?: Partial<JobMessage>): Promise<void>;
  /**
   * Drains the queue with `workers` concurrent invocations, as the event source does.
   * An invocation that does not return within `invocationMs` is treated as a crashed
   * one: its records stay in flight until their visibility timeout.
   */
  drain(options: {
    workers: number;
    agent: Agent;
    invocationMs?: number;
    deps?: (invocation: number) => Partial<WorkerDeps>;
    state?: (invocation: number, records: readonly QueueRecord[]) => StatePort;
    untilMs?: number;
  }): Promise<{ invocations: number; crashed: number; responses: BatchResponse[] }>;
  close(): Promise<void>;
}

export async function harness(options: {
  budgetMicros?: number;
  visibilityTimeoutMs?: number;
  maxReceiveCount?: number;
  leaseMs?: number;
  endpoint?: (engine: string) => Promise<string> | string;
  maxAttempts?: number;
}): Promise<Harness> {
  const engine = await startEmbeddedDynamo();
  const endpoint = options.endpoint ? await options.endpoint(engine.endpoint) : engine.endpoint;
  const adminClient = embeddedDynamoClient(engine.endpoint);
  await ensureTable(adminClient, 'scenarios');
  const client = embeddedDynamoClient(endpoint, options.maxAttempts);
  const state = dynamoState({ tableName: 'scenarios', client });
  const runId = `scn-${Math.random().toString(36).slice(2, 8)}`;
  await dynamoState({ tableName: 'scenarios', client: adminClient }).createRun({
    runId,
    budgetMicros: options.budgetMicros ?? 1_000_000_000,
    createdAt: Date.now(),
  });
  const queue = LocalQueue.open(undefined, {
    visibilityTimeoutMs: options.visibilityTimeoutMs ?? 30_000,
    maxReceiveCount: options.maxReceiveCount ?? 5,
  });
  const workspaces = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'fanout-scenario-')));
  const leaseMs = options.leaseMs ?? 10_000;

  return {
    runId,
    state,
    queue,
    workspaces,
    endpoint: engine.endpoint,
    async send(list, copies = 1, extra = {}) {
      for (const issue of list) {
        await state.registerJob({
          runId,
          jobKey: jobKey(issue),
          title: issue.title,
          registeredAt: Date.now(),
          ...(extra.priority ? { priority: extra.priority } : {}),
        });
      }
      const entries = list.map((issue) => queueEntry(JSON.parse(messageFor(runId, issue, extra))));
      for (let c = 0; c < copies; c++) await queue.send(entries);
    },
    async drain({ workers, agent, invocationMs = 60_000, deps, state: stateFor, untilMs = 120_000 }) {
      let invocations = 0;
      let crashed = 0;
      const responses: BatchResponse[] = [];
      const stopAt = Date.now() + untilMs;
      const loop = async (worker: number) => {
        while (!queue.isEmpty() && Date.now() < stopAt) {
          const records = await queue.receive(1, 50);
          if (records.length === 0) continue;
          const invocation = ++invocations;
          const base: WorkerDeps = {
            state: stateFor ? stateFor(invocation, records) : state,
            queue,
            workspaces,
            agent,
            logger: silent,
            clock: Date.now,
            workerId: `worker-${String(worker + 1).padStart(2, '0')}`,
            owner: `invocation-${invocation}`,
            leaseMs,
            heartbeatMs: Math.max(20, Math.floor(leaseMs / 3)),
            maxReceiveCount: options.maxReceiveCount ?? 5,
            deadline: Date.now() + invocationMs,
          };
          let timer: NodeJS.Timeout | undefined;
          const timedOut = new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), invocationMs);
          });
          const response = await Promise.race([
            processBatch(records, { ...base, ...deps?.(invocation) }),
            timedOut,
          ]);
          clearTimeout(timer);
          if (response === 'timeout') {
            crashed++;
            continue; // as on Lambda: no partial response, the records come back after their visibility timeout
          }
          responses.push(response);
          const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
          for (const r of records) if (!failed.has(r.messageId)) await queue.delete(r);
        }
      };
      await Promise.all(Array.from({ length: workers }, (_, w) => loop(w)));
      return { invocations, crashed, responses };
    },
    async close() {
      queue.close();
      client.destroy();
      adminClient.destroy();
      await engine.close();
    },
  };
}

/**
 * An agent that does `work` per job, counts its runs, and costs `costMicros`; `starts`
 * holds when each job's agent first started, in the order they started.
 */
export function countingAgent(
  options: { workMs?: number; costMicros?: number; onStart?: (started: number) => void } = {},
) {
  const runs = new Map<string, number>();
  const starts = new Map<string, number>();
  const agent: Agent = {
    name: 'counting',
    firstReservationMicros: () => options.costMicros ?? 1000,
    async run(job, workspace, context) {
      const key = jobKey(job.issue);
      runs.set(key, (runs.get(key) ?? 0) + 1);
      if (!starts.has(key)) {
        starts.set(key, Date.now());
        options.onStart?.(starts.size);
      }
      const reservation = await context.spend.reserve(options.costMicros ?? 1000);
      await new Promise((resolve) => setTimeout(resolve, options.workMs ?? 5));
      await reservation.settle(options.costMicros ?? 1000);
      await workspace.write('result.txt', key);
      return { summary: 'ok' };
    },
  };
  return { agent, runs, starts };
}
