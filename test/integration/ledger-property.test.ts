import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTable } from '../../shared/adapters/dynamo/index.js';
import {
  DynamoRunLedger,
  inTransit,
  type LedgerItems,
  ledgerTotals,
  ledgerViolations,
} from '../../shared/adapters/dynamo/run-ledger.js';
import {
  type EmbeddedDynamo,
  embeddedDynamoClient,
  startEmbeddedDynamo,
} from '../../shared/adapters/embedded-dynamo.js';

/**
 * The ledger protocol against a model, on the real engine: random sequences of reserve,
 * settle, crash (before a write, or after it applied with its answer lost, at any write of
 * the protocol: the reservation, a move of credit, a gathering, a settlement), retry of the
 * crashed call (a settlement with its id, a reservation as a new one), takeover (a later attempt closes what a dead one left open) and concurrent
 * calls. After every step the invariant and the model are checked against every item.
 */
class Crash extends Error {}

let engine: EmbeddedDynamo;
let client: DynamoDBClient;
/** Which write of the next call crashes, and how: set by a step, counted by the middleware. */
let plan: { at: number; when: 'before' | 'after' } | undefined;
let writes = 0;

beforeAll(async () => {
  engine = await startEmbeddedDynamo();
  client = embeddedDynamoClient(engine.endpoint);
  await ensureTable(client, 'ledger-property');
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UpdateItemCommand' || !plan) return next(args);
      const n = writes++;
      if (n === plan.at && plan.when === 'before') throw new Crash('before');
      const answer = await next(args);
      if (n === plan.at && plan.when === 'after') throw new Crash('after');
      return answer;
    },
    { step: 'initialize', name: 'crashAt' },
  );
});
afterAll(async () => {
  client.destroy();
  await engine.close();
});

const crashArb = fc.option(
  fc.record({
    at: fc.integer({ min: 0, max: 5 }),
    when: fc.constantFrom('before' as const, 'after' as const),
  }),
  { nil: undefined },
);
const stepArb = fc.oneof(
  fc.record({
    kind: fc.constant('reserve' as const),
    actor: fc.integer({ min: 0, max: 2 }),
    amount: fc.integer({ min: 0, max: 12 }).map((n) => n * 500),
    crash: crashArb,
  }),
  fc.record({
    kind: fc.constant('settle' as const),
    pick: fc.nat(),
    share: fc.integer({ min: 0, max: 4 }),
    crash: crashArb,
  }),
  fc.record({ kind: fc.constant('retry' as const), actor: fc.integer({ min: 0, max: 2 }) }),
  fc.record({ kind: fc.constant('takeover' as const), actor: fc.integer({ min: 0, max: 2 }) }),
  fc.record({
    kind: fc.constant('concurrent' as const),
    amounts: fc.array(
      fc.integer({ min: 1, max: 8 }).map((n) => n * 500),
      { minLength: 2, maxLength: 4 },
    ),
  }),
);

type Known = {
  amount: number;
  actor: number;
  /** open: the ledger holds it; closed: settled; maybe-open / maybe-settled: a crash hid the answer. */
  state: 'open' | 'closed' | 'maybe-open' | 'maybe-settled';
  shard?: number;
};

let runs = 0;

describe('the ledger protocol, property-based (fast-check) on dynalite', () => {
  it('keeps spent + reserved within the budget and agrees with the model after every step', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 12 }).map((n) => n * 1000),
        fc.integer({ min: 1, max: 4 }),
        fc.array(stepArb, { minLength: 1, maxLength: 24 }),
        async (budget, shards, steps) => {
          const runId = `prop-${++runs}`;
          const ledger = new DynamoRunLedger({ tableName: 'ledger-property', client });
          await ledger.createRun({ runId, budgetMicros: budget, createdAt: 0, ledgerShards: shards });
          const known = new Map<string, Known>();
          /** The call each actor's attempt crashed in, to retry. */
          const crashed = new Map<number, () => Promise<void>>();
          let sequence = 0;

          const reserve = async (id: string, amount: number, actor: number, crash: typeof plan) => {
            const entry: Known = known.get(id) ?? { amount, actor, state: 'maybe-open' };
            known.set(id, entry);
            plan = crash;
            writes = 0;
            try {
              const answer = await ledger.reserve(runId, id, amount);
              if (answer.kind === 'reserved' || answer.kind === 'duplicate') {
                entry.state = 'open';
                entry.shard = answer.shard;
              } else {
                expect(answer.kind).toBe('over-budget');
                if (entry.state === 'maybe-open') known.delete(id);
                return answer;
              }
            } catch (error) {
              if (!(error instanceof Crash)) throw error;
              entry.state = entry.state === 'open' ? 'open' : 'maybe-open';
              // Its retry is a new reservation, as AttemptLedger makes one: an SDK retry of the
              // same write is answered 'duplicate' (the state tests), but a reservation the
              // first call placed off its home shard is found only by the takeover.
              crashed.set(actor, () =>
                reserve(`p${actor}.${++sequence}.${amount}`, amount, actor, undefined).then(() => undefined),
              );
            } finally {
              plan = undefined;
            }
            return undefined;
          };
          const settle = async (
            id: string,
            actual: number,
            crash: typeof plan,
            kind: 'spent' | 'abandoned',
          ) => {
            const entry = known.get(id) as Known;
            plan = crash;
            writes = 0;
            try {
              await ledger.settle(runId, { id, shard: entry.shard ?? 0 }, entry.amount, actual, kind);
              entry.state = 'closed';
            } catch (error) {
              if (!(error instanceof Crash)) throw error;
              entry.state = 'maybe-settled';
              crashed.set(entry.actor, () => settle(id, actual, undefined, kind));
            } finally {
              plan = undefined;
            }
          };

          for (const step of steps) {
            let refused: { amount: number } | undefined;
            if (step.kind === 'reserve') {
              const id = `p${step.actor}.${++sequence}.${step.amount}`;
              const answer = await reserve(id, step.amount, step.actor, step.crash);
              if (answer && !step.crash) refused = { amount: step.amount };
            } else if (step.kind === 'settle') {
              const open = [...known].filter(([, k]) => k.state === 'open');
              const chosen = open[step.pick % Math.max(1, open.length)];
              if (chosen) await settle(chosen[0], (chosen[1].amount * step.share) / 4, step.crash, 'spent');
            } else if (step.kind === 'retry') {
              const again = crashed.get(step.actor);
              crashed.delete(step.actor);
              await again?.();
            } else if (step.kind === 'takeover') {
              // The attempt is dead: a later one closes what it left open, charged in full.
              crashed.delete(step.actor);
              const open = await ledger.openReservations(runId);
              for (const { id, shard } of open) {
                const entry = known.get(id);
                if (!entry || entry.actor !== step.actor) continue;
                entry.shard = shard;
                entry.state = 'open';
                await settle(id, entry.amount, undefined, 'abandoned');
              }
              for (const [id, entry] of known) {
                if (entry.actor !== step.actor) continue;
                if (entry.state === 'maybe-open') known.delete(id); // it never landed
                if (entry.state === 'maybe-settled') entry.state = 'closed'; // not open, so it did land
              }
            } else {
              await Promise.all(
                step.amounts.map((amount, i) =>
                  reserve(`c${i}.${++sequence}.${amount}`, amount, 3 + i, undefined),
                ),
              );
            }

            const items = (await ledger.readLedger(runId, 10)) as LedgerItems;
            check(items, budget, known, refused);
          }
        },
      ),
      { numRuns: 60, seed: 1313 },
    );
  }, 300_000);
});

function check(items: LedgerItems, budget: number, known: Map<string, Known>, refused?: { amount: number }) {
  // Nothing runs between steps: the read is one instant's.
  expect(items.consistent).toBe(true);
  // Each item's rules, spent + reserved within the budget, and no credit made or lost:
  // what is in no item is on its way between two.
  expect(ledgerViolations(items, budget)).toEqual([]);
  const open = new Set<string>();
  for (const shard of items.shards) {
    // What a shard holds reserved is the amounts of its open reservations (the id ends with it).
    const reserved = [...shard.open].reduce((sum, id) => sum + Number(id.split('.')[2]), 0);
    expect(shard.reservedMicros).toBe(reserved);
    for (const id of shard.open) open.add(id);
  }
  for (const [id, entry] of known) {
    if (entry.state === 'open') expect(open.has(id)).toBe(true);
    if (entry.state === 'closed') expect(open.has(id)).toBe(false);
  }
  for (const id of open) expect(known.has(id)).toBe(true);
  // Exhaustion is precise: a refusal (no crash, nothing running beside it) means the budget
  // as a whole, not one shard of it, could not cover the amount.
  if (refused) {
    const { spentMicros, reservedMicros, abandonedMicros } = ledgerTotals(items.shards);
    const unspent = budget - spentMicros - reservedMicros - abandonedMicros;
    expect(refused.amount).toBeGreaterThan(unspent - inTransit(items));
  }
}
