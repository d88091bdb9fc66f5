import type { JobMessage } from '../domain/job.js';
import type { Workspace } from './workspace.js';

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Reservations against the run budget, made by the agent before work that costs money. */
export interface Spend {
  /** Reserves the worst case; throws FanoutError BUDGET_EXHAUSTED when the budget cannot cover it. */
  reserve(amountMicros: number): Promise<Reservation>;
}

export interface Reservation {
  readonly amountMicros: number;
  /** Records what the work actually cost; the rest of the reservation returns to the budget. */
  settle(actualMicros: number): Promise<void>;
}

export interface AgentContext {
  /** Epoch ms by which the agent must have returned (the invocation's deadline). */
  readonly deadline: number;
  /**
   * Aborted when the lease is lost, the run is stopping, or the deadline nears. In the
   * last case the reason is a FanoutError with code DEADLINE: an agent that can save
   * its progress to the workspace does so and returns `{ continue: true }`.
   */
  readonly signal: AbortSignal;
  /** The invocation this is of the job: 0 first, then one more per continuation. */
  readonly continuation: number;
  readonly spend: Spend;
  readonly logger: Logger;
}

/**
 * verified: the tests failed before the change and pass after it, and the reviewer approved it;
 * unverified: the reviewer approved it and the tests do not show it fixes the issue;
 * rejected: the reviewer still requested changes when the revisions ran out.
 */
export type Verdict = 'verified' | 'unverified' | 'rejected';

export interface AgentResult {
  readonly summary: string;
  /** What the repository's tests and the reviewer said of the change, when the agent ran them (a sandbox). */
  readonly verdict?: Verdict;
  /** One line of what the tests and the reviewer said (with the verdict), e.g. for the report. */
  readonly verification?: string;
  /** The agent saved its progress in the workspace; the job goes on in a new invocation. */
  readonly continue?: boolean;
}

/** An agent works one job in its workspace. It throws FanoutError to fail the job. */
export interface Agent {
  readonly name: string;
  /** What its spend is counted under, per model: the model id (llm), else the agent's name. */
  readonly model?: string;
  /**
   * The worst case of the agent's first reservation, if known before it starts: the
   * worker reserves it while it takes the lease, and the agent's first `reserve` of
   * no more than that amount receives it without another round trip.
   */
  firstReservationMicros?(job: JobMessage): number;
  run(job: JobMessage, workspace: Workspace, context: AgentContext): Promise<AgentResult>;
}
