import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ensureTable } from '../shared/adapters/dynamo/index.js';
import {
  DynamoRunLedger,
  inTransit,
  type LedgerItems,
  ledgerTotals,
  ledgerViolations,
} from '../shared/adapters/dynamo/run-ledger.js';
import { embeddedDynamoClient } from '../shared/adapters/embedded-dynamo.js';
import { FanoutError } from '../shared/domain/errors.js';
import { AttemptLedger, reclaimAbandoned } from '../shared/domain/ledger.js';
import { seededRandom } from '../shared/domain/random.js';

/**
 * The budget ledger's own code (AttemptLedger over the DynamoDB adapter) raced by many
 * concurrent workers against a real engine, with crashes injected at the ledger's writes:
 * for the 200-worker test and `fanout bench`. A crash is an error thrown either before a
 * write reaches the engine or after it was applied (its answer lost), and the attempt dies
 * there; its job goes back to the queue and the next attempt at it takes over, closing
 * what the dead one left open (reclaimAbandoned), as a worker does after a lease expires.
 * A sampler reads the ledger all along and checks every item's rule and, whenever its read
 * was one instant's, the budget itself.
 */
export interface LedgerRaceOptions {
  readonly endpoint: string;
  readonly workers: number;
  readonly jobs: number;
  readonly callsPerJob: number;
  readonly worstMicros: number;
  readonly budgetMicros: number;
  /** Chance that one ledger write crashes its attempt (half before it applies, half after). */
  readonly crashChance: number;
  readonly seed: number;
  readonly shards?: number;
  readonly tableName?: string;
  /** How long an attempt may wait for room in the budget before its job goes back to the queue. @default 2000 */
  readonly attemptMs?: number;
}

export interface LedgerRaceResult {
  readonly samples: number;
  readonly consistentSamples: number;
  /** The most spent + reserved + abandoned seen in a consistent sample. */
  readonly maxCommittedMicros: number;
  /** Item rules found broken by the sampler (empty when none). */
  readonly violations: readonly string[];
  readonly crashes: { readonly before: number; readonly after: number };
  readonly attempts: number;
  readonly done: number;
  readonly refused: number;
  /** What the ledger holds at the end. */
  readonly final: {
    readonly spentMicros: number;
    readonly abandonedMicros: number;
    readonly reservedMicros: number;
    readonly open: number;
    readonly inTransitMicros: number;
  };
  /** What the job records add up to: confirmed settlements and the reclaimed reservations of dead attempts. */
  readonly jobsMicros: number;
  /** Settlements that applied after which their attempt died before it knew (the job records cannot have them). */
  readonly deadSettledMicros: number;
  readonly ledgerWrites: number;
  /** Writes to the busiest ledger item. */
  readonly busiestItemWrites: number;
  readonly maxItemBytes: number;
  readonly tookMs: number;
}

class Crash extends Error {
  constructor(readonly when: 'before' | 'after') {
    super(`injected crash ${when} a ledger write`);
  }
}

class Deadline extends Error {
  constructor() {
    super('the attempt reached its deadline while waiting for the budget');
  }
}

const silent = { info: () => {}, warn: () => {}, error: () => {} };

export async function raceLedger(options: LedgerRaceOptions): Promise<LedgerRaceResult> {
  const started = Date.now();
  const tableName = options.tableName ?? 'fanout-ledger-race';
  const runId = `race-${options.seed}-${started}`;
  const random = seededRandom(options.seed, 'ledger-race');
  const clients: DynamoDBClient[] = [];
  const client = () => {
    // A request the engine never answers would hold its worker, and the race, forever.
    const made = embeddedDynamoClient(options.endpoint, 8, undefined, 10_000);
    clients.push(made);
    return made;
  };
  const admin = client();
  await ensureTable(admin, tableName);
  const reader = new DynamoRunLedger({ tableName, client: admin });
  await reader.createRun({
    runId,
    budgetMicros: options.budgetMicros,
    createdAt: started,
    ...(options.shards ? { ledgerShards: options.shards } : {}),
  });

  const crashes = { before: 0, after: 0 };
  let deadSettledMicros = 0;
  let ledgerWrites = 0;
  const writesByItem = new Map<string, number>();

  /** One worker's client: its ledger writes may crash the attempt in progress. */
  const workerClient = () => {
    const made = client();
    made.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'UpdateItemCommand') return next(args);
        // The document client's input: plain values, not yet marshalled.
        const input = args.input as {
          Key?: { pk?: string };
          UpdateExpression?: string;
          ExpressionAttributeValues?: Record<string, unknown>;
        };
        const item = String(input.Key?.pk);
        const roll = random();
        if (roll < options.crashChance / 2) {
          crashes.before++;
          throw new Crash('before');
        }
        const answer = await next(args);
        ledgerWrites++;
        writesByItem.set(item, (writesByItem.get(item) ?? 0) + 1);
        if (roll < options.crashChance) {
          crashes.after++;
          // A settlement (spent, or a takeover's abandoned charge) that applied unseen.
          if (input.UpdateExpression?.includes('DELETE #open')) {
            deadSettledMicros += Number(input.ExpressionAttributeValues?.[':s'] ?? 0);
          }
          throw new Crash('after');
        }
        return answer;
      },
      { step: 'initialize', name: 'injectCrash' },
    );
    return made;
  };

  // The queue: every job until it ends, a job whose attempt died goes back to its end.
  const queue = Array.from({ length: options.jobs }, (_, i) => `acme/race#${i + 1}`);
  const jobCost = new Map<string, number>();
  let attempts = 0;
  let done = 0;
  let refused = 0;
  let working = true;

  const violations: string[] = [];
  let samples = 0;
  let consistentSamples = 0;
  let maxCommittedMicros = 0;
  let maxItemBytes = 0;
  const check = (items: LedgerItems) => {
    samples++;
    for (const s of items.shards) maxItemBytes = Math.max(maxItemBytes, s.bytes);
    violations.push(...ledgerViolations(items, options.budgetMicros));
    if (!items.consistent) return;
    consistentSamples++;
    const { spentMicros, reservedMicros, abandonedMicros } = ledgerTotals(items.shards);
    maxCommittedMicros = Math.max(maxCommittedMicros, spentMicros + reservedMicros + abandonedMicros);
  };
  const sampler = (async () => {
    while (working) {
      const items = await reader.readLedger(runId, 2);
      if (items) check(items);
    }
  })();

  const worker = async (w: number, phases: Map<number, string>) => {
    const ledger = new DynamoRunLedger({ tableName, client: workerClient() });
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      phases.set(w, 'working');
      const holder = { runId, jobKey: job, owner: `w${w}-a${++attempts}` };
      const spend = new AttemptLedger(ledger, holder, Date.now);
      // A wait for room in the budget ends, as at a worker's deadline: the job goes back to the
      // queue. Without it, workers waiting on reservations that dead attempts hold would wait
      // for takeovers that only they could make.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(new Deadline()), options.attemptMs ?? 2000);
      spend.stopWaitingOn(deadline.signal);
      try {
        // A takeover: what earlier attempts at this job left open is charged to it, in full.
        // The job's record takes each amount as soon as the ledger confirmed it.
        const record = (micros: number) => jobCost.set(job, (jobCost.get(job) ?? 0) + micros);
        phases.set(w, 'reclaiming');
        if (jobCost.has(job)) record(await reclaimAbandoned(ledger, holder, Date.now(), 0, silent));
        else jobCost.set(job, 0);
        let recorded = 0;
        let outcome: 'done' | 'refused' = 'done';
        for (let call = 0; call < options.callsPerJob; call++) {
          let reservation: Awaited<ReturnType<AttemptLedger['reserve']>>;
          try {
            phases.set(w, 'reserving');
            reservation = await spend.reserve(options.worstMicros);
          } catch (error) {
            if (error instanceof FanoutError && error.code === 'BUDGET_EXHAUSTED') {
              outcome = 'refused';
              break;
            }
            throw error;
          }
          phases.set(w, 'settling');
          await reservation.settle(Math.round(options.worstMicros * (0.3 + 0.7 * random())));
          phases.set(w, 'confirming');
          const confirmed = await spend.confirmedMicros();
          record(confirmed - recorded);
          recorded = confirmed;
        }
        if (outcome === 'done') done++;
        else refused++;
      } catch (error) {
        if (!(error instanceof Crash) && !(error instanceof Deadline)) throw error;
        // The attempt died, or reached its deadline: what it confirmed is on its job's record.
        queue.push(job);
      } finally {
        clearTimeout(timer);
      }
    }
    phases.delete(w);
  };
  // A race that stops moving (no attempt begun and no ledger write for 30 s) is reported with
  // what its workers were doing, rather than left to hang.
  const phases = new Map<number, string>();
  let stall: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    let last = '';
    let since = Date.now();
    stall = setInterval(() => {
      const now = `${attempts}/${ledgerWrites}`;
      if (now !== last) {
        last = now;
        since = Date.now();
        return;
      }
      if (Date.now() - since < 30_000) return;
      const doing = new Map<string, number>();
      for (const phase of phases.values()) doing.set(phase, (doing.get(phase) ?? 0) + 1);
      reject(
        new Error(
          `the ledger race stopped moving for 30 s: ${attempts} attempts, ${ledgerWrites} writes, ${queue.length} jobs queued, ` +
            `done ${done}, refused ${refused}; workers: ${[...doing].map(([p, n]) => `${n} ${p}`).join(', ') || 'none'}`,
        ),
      );
    }, 1000);
  });
  try {
    await Promise.race([
      Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w, phases))),
      stalled,
    ]);
  } finally {
    clearInterval(stall);
    working = false;
    await sampler;
  }
  const items = await reader.readLedger(runId, 20);
  if (items) check(items);
  const totals = ledgerTotals(items?.shards ?? []);
  const result: LedgerRaceResult = {
    samples,
    consistentSamples,
    maxCommittedMicros,
    violations,
    crashes,
    attempts,
    done,
    refused,
    final: {
      spentMicros: totals.spentMicros,
      abandonedMicros: totals.abandonedMicros,
      reservedMicros: totals.reservedMicros,
      open: totals.openReservations,
      inTransitMicros: items ? inTransit(items) : 0,
    },
    jobsMicros: [...jobCost.values()].reduce((a, b) => a + b, 0),
    deadSettledMicros,
    ledgerWrites,
    busiestItemWrites: Math.max(0, ...writesByItem.values()),
    maxItemBytes,
    tookMs: Date.now() - started,
  };
  for (const made of clients) made.destroy();
  return result;
}
