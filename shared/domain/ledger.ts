import { createHash } from 'node:crypto';
import type { Logger, Reservation, Spend } from '../ports/agent.js';
import type { LedgerEntry, RunLedger } from '../ports/state.js';
import { FanoutError } from './errors.js';
import { canonicalRepo, parseJobKey } from './job.js';
import { sleep } from './sleep.js';

/** Who reserves: one attempt (one invocation's owner) at one job. */
export interface LedgerHolder {
  readonly runId: string;
  readonly jobKey: string;
  readonly owner: string;
  /** The ledger of the job's repository budget within the run, when the run has one (repoLedgerId). */
  readonly repoLedger?: string;
}

/**
 * The ledger of one repository's budget within a run: a ledger like the run's (same items,
 * same conditional writes), under its own id, left out of the list of runs. A reservation
 * is taken from it first, then from the run's, with the same id in both.
 */
export function repoLedgerId(runId: string, repo: string): string {
  return `${runId}@${canonicalRepo(repo)}`;
}

/** The ledgers a holder reserves in, the narrowest first. */
const ledgersOf = (holder: LedgerHolder) =>
  holder.repoLedger ? [holder.repoLedger, holder.runId] : [holder.runId];

/** A short, fixed-length name for a job or an attempt in a reservation id. */
function digest(text: string, chars: number): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, chars);
}

/**
 * A reservation's id names its job (60 bits of a digest of its key), the attempt (owner)
 * that made it (36 bits), its place in that attempt, its amount and when it was made. A
 * retried write is recognised as the same reservation, and a later attempt can find and
 * close what a crashed one left open. Digests keep it under 52 bytes whatever the key's
 * length, which bounds a ledger shard's size (shared/adapters/dynamo/schema.ts).
 */
export function reservationId(
  holder: Omit<LedgerHolder, 'runId'>,
  sequence: number,
  amountMicros: number,
  at: number,
) {
  return [digest(holder.jobKey, 10), digest(holder.owner, 6), sequence, amountMicros, at].join('.');
}

function parseReservationId(id: string) {
  const [job, owner, , amount, at, ...rest] = id.split('.');
  if (job === undefined || owner === undefined || at === undefined || rest.length > 0) return undefined;
  return { job, owner, amountMicros: Number(amount), at: Number(at) };
}

/**
 * Closes reservations that crashed attempts at this job left open. They are charged in
 * full, as abandoned: the ledger cannot know whether a crashed attempt's provider billed
 * it, so it errs toward spending less than the budget. A reservation younger than
 * `minAgeMs` belongs to a delivery racing this one, not to a dead attempt, and is left.
 * Returns what was charged.
 */
export async function reclaimAbandoned(
  state: RunLedger,
  holder: LedgerHolder,
  now: number,
  minAgeMs: number,
  logger: Logger,
): Promise<number> {
  let charged = 0;
  const job = digest(holder.jobKey, 10);
  const owner = digest(holder.owner, 6);
  for (const ledger of ledgersOf(holder)) {
    for (const entry of await state.openReservations(ledger)) {
      const parsed = parseReservationId(entry.id);
      if (!parsed || parsed.job !== job || parsed.owner === owner) continue;
      if (now - parsed.at < minAgeMs) continue;
      const answer = await state.settle(ledger, entry, parsed.amountMicros, parsed.amountMicros, 'abandoned');
      // What the run was charged (a repository's ledger counts the same money again).
      if (answer === 'settled' && ledger === holder.runId) charged += parsed.amountMicros;
      logger.warn('closed a reservation left open by a crashed attempt', {
        jobKey: holder.jobKey,
        ledger,
        id: entry.id,
        answer,
      });
    }
  }
  return charged;
}

/** A reservation's place in each ledger that holds it. */
type Held = readonly { readonly ledger: string; readonly entry: LedgerEntry }[];

type Reserved =
  | { ok: true; held: Held }
  /** `unspentMicros` with a budget refusal; none with 'busy' (try again) or a failed write. */
  | { ok: false; error: unknown; busy?: true; unspentMicros?: number };

const isBudgetRefusal = (error: unknown) => error instanceof FanoutError && error.code === 'BUDGET_EXHAUSTED';

/**
 * One attempt's reservations. A settlement is written in the background: until it
 * lands, its whole reservation still counts against the budget, which errs safe.
 */
export class AttemptLedger implements Spend {
  private spent = 0;
  /** Of `spent`, what the ledger confirmed: a settlement the holder had already closed counts nothing. */
  private confirmed = 0;
  private sequence = 0;
  private readonly open = new Set<Reservation>();
  private readonly writes: Promise<unknown>[] = [];
  private early: { amountMicros: number; answer: Promise<Reserved> } | undefined;
  private signal: AbortSignal | undefined;

  constructor(
    private readonly state: RunLedger,
    private readonly holder: LedgerHolder,
    private readonly clock: () => number,
  ) {}

  /** A wait for room in the budget ends when this is aborted (a lost lease, the deadline, a stop). */
  stopWaitingOn(signal: AbortSignal): void {
    this.signal = signal;
  }

  /**
   * One reservation in every ledger of the holder, the repository's first: granted only if
   * each grants it. One refused gives back what the others granted (nothing was spent on it).
   */
  private async write(amountMicros: number): Promise<Reserved> {
    const id = reservationId(this.holder, ++this.sequence, amountMicros, this.clock());
    const held: { ledger: string; entry: LedgerEntry }[] = [];
    for (const ledger of ledgersOf(this.holder)) {
      const reserved = await this.writeIn(ledger, id, amountMicros);
      if (!reserved.ok) {
        for (const h of held)
          await this.state.settle(h.ledger, h.entry, amountMicros, 0).catch(() => undefined);
        return reserved;
      }
      held.push(...reserved.held);
    }
    return { ok: true, held };
  }

  private writeIn(ledger: string, id: string, amountMicros: number): Promise<Reserved> {
    const budget = ledger === this.holder.runId ? 'the run budget' : `the budget of ${this.repo()}`;
    return this.state.reserve(ledger, id, amountMicros).then(
      (answer): Reserved => {
        if (answer.kind === 'over-budget') {
          const error = new FanoutError(
            'BUDGET_EXHAUSTED',
            `${budget} cannot cover ${amountMicros} micro-USD more`,
          );
          return { ok: false, error, unspentMicros: answer.unspentMicros };
        }
        if (answer.kind === 'busy') {
          const error = new FanoutError(
            'BUDGET_EXHAUSTED',
            `the ledger of ${budget} could not place ${amountMicros} micro-USD yet (its shards are full or busy)`,
          );
          return { ok: false, error, busy: true };
        }
        return { ok: true, held: [{ ledger, entry: { id, shard: answer.shard } }] };
      },
      (error: unknown): Reserved => ({ ok: false, error }),
    );
  }

  private repo(): string {
    return parseJobKey(this.holder.jobKey).repo;
  }

  /**
   * Starts the reservation of the agent's first worst case while the lease is being
   * taken; the agent's first `reserve` of no more than that amount receives it.
   */
  reserveEarly(amountMicros: number): void {
    this.early = { amountMicros, answer: this.write(amountMicros) };
  }

  async reserve(amountMicros: number): Promise<Reservation> {
    if (!Number.isInteger(amountMicros) || amountMicros < 0) {
      throw new FanoutError(
        'AGENT_FAILED',
        `a reservation must be a whole number of micro-dollars >= 0, not ${amountMicros}`,
      );
    }
    const early = this.early;
    this.early = undefined;
    let reserved: Reserved;
    let held = amountMicros;
    if (early && amountMicros <= early.amountMicros) {
      reserved = await early.answer;
      held = early.amountMicros;
    } else {
      if (early) await this.releaseEarly(early);
      reserved = await this.write(amountMicros);
    }
    // Refused while other jobs hold reservations that may settle below their worst case:
    // wait for their settlements rather than give up on money that may come back.
    for (
      let waitMs = 50;
      !reserved.ok && isBudgetRefusal(reserved.error);
      waitMs = Math.min(1000, waitMs * 2)
    ) {
      // Spent and abandoned only grow: once what is unspent cannot cover it, it never will.
      if (!reserved.busy && (reserved.unspentMicros ?? 0) < amountMicros) break;
      // With jitter, so that many refused workers do not all ask again at once.
      await sleep(waitMs * (0.5 + Math.random()), this.signal);
      reserved = await this.write(amountMicros);
      held = amountMicros;
    }
    if (!reserved.ok) throw reserved.error;
    const places = reserved.held;
    const reservation: Reservation = {
      amountMicros: held,
      settle: async (actualMicros: number) => {
        if (!this.open.delete(reservation)) return;
        this.spent += actualMicros;
        for (const place of places) {
          this.track(
            this.state.settle(place.ledger, place.entry, held, actualMicros).then((answer) => {
              // The run's ledger says what the attempt was charged.
              if (answer === 'settled' && place.ledger === this.holder.runId) this.confirmed += actualMicros;
            }),
          );
        }
      },
    };
    this.open.add(reservation);
    return reservation;
  }

  private async releaseEarly(early: NonNullable<AttemptLedger['early']>): Promise<void> {
    const reserved = await early.answer;
    if (!reserved.ok) return;
    for (const place of reserved.held)
      await this.state.settle(place.ledger, place.entry, early.amountMicros, 0);
  }

  /** Gives back an early reservation the agent never received: nothing can have been spent on it. */
  async releaseUnused(): Promise<void> {
    const early = this.early;
    this.early = undefined;
    if (early) await this.releaseEarly(early);
  }

  /** Settles what the agent left open at its whole amount (it may have been spent) and returns the attempt's cost. */
  closeAttempt(): number {
    if (this.early) this.track(this.releaseUnused());
    for (const reservation of [...this.open]) void reservation.settle(reservation.amountMicros);
    return this.spent;
  }

  /** A write in the background: its failure is the attempt's to see, in flushed(), not an unhandled rejection before then. */
  private track(write: Promise<void>): void {
    write.catch(() => undefined);
    this.writes.push(write);
  }

  /** Resolves when every settlement is written; rejects if one failed. */
  async flushed(): Promise<void> {
    await Promise.all(this.writes);
  }

  /**
   * What the ledger counted as this attempt's spend, once every settlement is written: less
   * than it settled when it lost its lease and the new holder closed its reservations.
   */
  async confirmedMicros(): Promise<number> {
    await this.flushed();
    return this.confirmed;
  }
}
