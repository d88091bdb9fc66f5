import type { Logger, Reservation, Spend } from '../ports/agent.js';
import type { RunLedger } from '../ports/state.js';
import { FanoutError } from './errors.js';
import { sleep } from './sleep.js';

/** Who reserves: one attempt (one invocation's owner) at one job. */
export interface LedgerHolder {
  readonly runId: string;
  readonly jobKey: string;
  readonly owner: string;
}

/**
 * A reservation's id names its job, the attempt (owner) that made it, its place in
 * that attempt, its amount and when it was made. A retried write is recognised as
 * the same reservation, and a later attempt can find and close what a crashed one
 * left open.
 */
export function reservationId(
  holder: Omit<LedgerHolder, 'runId'>,
  sequence: number,
  amountMicros: number,
  at: number,
) {
  return [holder.jobKey, holder.owner.replaceAll('|', '/'), sequence, amountMicros, at].join('|');
}

function parseReservationId(id: string) {
  const [jobKey, owner, , amount, at, ...rest] = id.split('|');
  if (jobKey === undefined || at === undefined || rest.length > 0) return undefined;
  return { jobKey, owner, amountMicros: Number(amount), at: Number(at) };
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
  const run = await state.getRun(holder.runId);
  for (const id of run?.outstanding ?? []) {
    const parsed = parseReservationId(id);
    if (!parsed || parsed.jobKey !== holder.jobKey || parsed.owner === holder.owner) continue;
    if (now - parsed.at < minAgeMs) continue;
    const answer = await state.settle(
      holder.runId,
      id,
      parsed.amountMicros,
      parsed.amountMicros,
      'abandoned',
    );
    if (answer === 'settled') charged += parsed.amountMicros;
    logger.warn('closed a reservation left open by a crashed attempt', { jobKey: holder.jobKey, id, answer });
  }
  return charged;
}

type Reserved = { ok: true; id: string } | { ok: false; error: unknown };

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
   * Whether a refused reservation may still be granted: the budget could cover it once the
   * reservations other jobs hold are settled. Only when nothing is reserved and it still
   * does not fit is the budget exhausted for it, so identical runs end with the same outcomes.
   */
  private async mayFitLater(amountMicros: number): Promise<boolean> {
    // Not "nothing is reserved, so give up": the reservations may have settled between the
    // refusal and this read, and then the amount fits now.
    const run = await this.state.getRun(this.holder.runId);
    if (!run) return false;
    return run.budgetMicros - run.spentMicros - run.abandonedMicros >= amountMicros;
  }

  private write(amountMicros: number): Promise<Reserved> {
    const id = reservationId(this.holder, ++this.sequence, amountMicros, this.clock());
    return this.state.reserve(this.holder.runId, id, amountMicros).then(
      (answer): Reserved =>
        answer === 'over-budget'
          ? {
              ok: false,
              error: new FanoutError(
                'BUDGET_EXHAUSTED',
                `the run budget cannot cover ${amountMicros} micro-USD more`,
              ),
            }
          : { ok: true, id },
      (error: unknown): Reserved => ({ ok: false, error }),
    );
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
      if (!(await this.mayFitLater(amountMicros))) break;
      await sleep(waitMs, this.signal);
      reserved = await this.write(amountMicros);
      held = amountMicros;
    }
    if (!reserved.ok) throw reserved.error;
    const id = reserved.id;
    const reservation: Reservation = {
      amountMicros: held,
      settle: async (actualMicros: number) => {
        if (!this.open.delete(reservation)) return;
        this.spent += actualMicros;
        this.writes.push(
          this.state.settle(this.holder.runId, id, held, actualMicros).then((answer) => {
            if (answer === 'settled') this.confirmed += actualMicros;
          }),
        );
      },
    };
    this.open.add(reservation);
    return reservation;
  }

  private async releaseEarly(early: NonNullable<AttemptLedger['early']>): Promise<void> {
    const reserved = await early.answer;
    if (reserved.ok) await this.state.settle(this.holder.runId, reserved.id, early.amountMicros, 0);
  }

  /** Gives back an early reservation the agent never received: nothing can have been spent on it. */
  async releaseUnused(): Promise<void> {
    const early = this.early;
    this.early = undefined;
    if (early) await this.releaseEarly(early);
  }

  /** Settles what the agent left open at its whole amount (it may have been spent) and returns the attempt's cost. */
  closeAttempt(): number {
    if (this.early) this.writes.push(this.releaseUnused());
    for (const reservation of [...this.open]) void reservation.settle(reservation.amountMicros);
    return this.spent;
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
