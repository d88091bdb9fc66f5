import { FanoutError } from '../domain/errors.js';
import { type JobMessage, jobKey } from '../domain/job.js';
import { seededRandom } from '../domain/random.js';
import { sleep } from '../domain/sleep.js';
import type { Range } from '../domain/units.js';
import type { Agent, AgentContext, AgentResult } from '../ports/agent.js';
import type { Workspace } from '../ports/workspace.js';

export interface SimulateOptions {
  readonly durationMs: Range;
  /** Share of jobs that fail, 0..1. */
  readonly failRate: number;
  readonly costMicros: Range;
  readonly seed: number;
}

export interface SimulatedPlan {
  readonly durationMs: number;
  readonly costMicros: number;
  readonly fails: boolean;
}

/** What the simulate agent will do for a job: a function of the seed and the job key alone. */
export function planFor(key: string, options: SimulateOptions): SimulatedPlan {
  const random = seededRandom(options.seed, key);
  const between = (range: Range) => Math.round(range.min + random() * (range.max - range.min));
  const durationMs = between(options.durationMs);
  const costMicros = between(options.costMicros);
  return { durationMs, costMicros, fails: random() < options.failRate };
}

const CHECKPOINT = 'checkpoint.json';

/**
 * The seed document's test mode, made real: each job takes its planned time, costs its
 * planned amount through the budget, writes its result into its workspace, and fails
 * when its plan says so. The same seed repeats a run exactly, whatever worker takes what.
 * Asked to checkpoint (the invocation's deadline nears), it saves the time worked so
 * far and resumes from it in the next invocation, so a job longer than any one
 * invocation finishes, and its cost, incurred when the work is done, is counted once.
 */
export function simulateAgent(options: SimulateOptions): Agent {
  return {
    name: 'simulate',
    firstReservationMicros: () => options.costMicros.max,
    async run(job: JobMessage, workspace: Workspace, context: AgentContext): Promise<AgentResult> {
      const key = jobKey(job.issue);
      const plan = planFor(key, options);
      // Only a continuation can have a checkpoint to resume from.
      const saved = context.continuation > 0 ? await workspace.read(CHECKPOINT) : undefined;
      const workedBefore = saved
        ? (JSON.parse(Buffer.from(saved).toString('utf8')) as { workedMs: number }).workedMs
        : 0;
      const reservation = await context.spend.reserve(options.costMicros.max);
      const started = Date.now();
      try {
        await sleep(Math.max(0, plan.durationMs - workedBefore), context.signal);
      } catch (reason) {
        // Stopped before the work was done: nothing was spent.
        await reservation.settle(0);
        if (reason instanceof FanoutError && reason.code === 'DEADLINE') {
          const workedMs = workedBefore + (Date.now() - started);
          await workspace.write(CHECKPOINT, JSON.stringify({ workedMs }));
          return { summary: `checkpointed after ${workedMs}ms of ${plan.durationMs}ms`, continue: true };
        }
        throw reason;
      }
      await reservation.settle(plan.costMicros);
      if (plan.fails) {
        throw new FanoutError('AGENT_FAILED', `simulated failure of ${key} (seed ${options.seed})`);
      }
      const summary = `simulated ${plan.durationMs}ms of work on ${key}`;
      await workspace.write(
        'result.json',
        JSON.stringify({ jobKey: key, summary, invocations: context.continuation + 1, ...plan }, null, 2),
      );
      return { summary };
    },
  };
}
