import { z } from 'zod';

/**
 * The agent's settings and their defaults, in one place: the domain owns them because a
 * job message carries them (chosen per run by `fanout send`), the command line's flags
 * default to them and the agents read them.
 */

const PriceSchema = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cacheRead: z.number().nonnegative().default(0),
  cacheWrite: z.number().nonnegative().default(0),
});
/** USD per million tokens, by model id; `asOf` dates the table. */
export const PriceTableSchema = z.object({
  asOf: z.string(),
  models: z.record(z.string(), PriceSchema),
});
export type Price = z.infer<typeof PriceSchema>;
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** A job runs this long in all, across its invocations, before it fails with RUN_TIME_EXCEEDED. */
export const MAX_RUN_TIME_MS = 6 * 3600_000;

/** The llm agent's limits when the run names none. */
export const LLM_DEFAULTS = {
  /** Model calls per job, across continuations. */
  maxSteps: 30,
  /** Output tokens per call. */
  maxOutputTokens: 4096,
  /** The job's own spending cap (2 USD), whatever is left of the run's budget. */
  maxCostPerJobMicros: 2_000_000,
  /** With a sandbox: how many times the implementer may revise a change the reviewer sent back. */
  maxRevisions: 2,
} as const;

const range = z
  .object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() })
  .refine((r) => r.max >= r.min, 'max must be >= min');

/** How a worker builds its agent: plain data, so it can travel to a worker process or a Lambda. */
export const AgentConfigSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('simulate'),
    durationMs: range,
    failRate: z.number().min(0).max(1),
    costMicros: range,
    seed: z.number().int().nonnegative(),
  }),
  z.object({
    kind: z.literal('llm'),
    /** A model id of the price table, or an inference profile of one; `scripted:demo` is the offline demo. */
    model: z.string().min(1),
    maxSteps: z.number().int().min(1).max(500).default(LLM_DEFAULTS.maxSteps),
    maxOutputTokens: z.number().int().min(1).max(64_000).default(LLM_DEFAULTS.maxOutputTokens),
    maxCostPerJobMicros: z.number().int().nonnegative().default(LLM_DEFAULTS.maxCostPerJobMicros),
    /** A price table of the user's own (its content); the one bundled with the code otherwise. */
    prices: PriceTableSchema.optional(),
    /** The branch, tag or commit to snapshot; the default branch when absent. */
    ref: z.string().min(1).max(255).optional(),
    /** What the worker does with a finished patch. */
    publish: z.enum(['none', 'comment', 'pr']).default('none'),
    /**
     * Whether the agent may run commands (`run_command`) in the worker's sandbox: `auto` with
     * whatever isolation the machine gives, `strict` only where the network is isolated.
     * Absent: none.
     */
    sandbox: z.enum(['none', 'auto', 'strict']).optional(),
    /** With `pr` or `comment`: publish a patch its tests did not verify too (labelled so). */
    publishUnverified: z.boolean().optional(),
    /** What a second of the sandbox costs, in micro-USD, charged to the run's budget (absent: nothing). */
    sandboxMicrosPerSecond: z.number().int().nonnegative().optional(),
    /** The repository's test command; found from its files when absent (with a sandbox). */
    testCommand: z.string().min(1).max(1000).optional(),
    /** With a sandbox: revisions the reviewer may ask for (`--max-revisions`). */
    maxRevisions: z.number().int().min(0).max(10).optional(),
  }),
]);
export type AgentConfig = z.infer<typeof AgentConfigSchema>;
export type SimulateSettings = Extract<AgentConfig, { kind: 'simulate' }>;

/** The simulate agent's defaults: 1-3 s and 0.02-0.08 USD a job, none failing, seed 42. */
export const DEFAULT_AGENT: SimulateSettings = {
  kind: 'simulate',
  durationMs: { min: 1000, max: 3000 },
  failRate: 0,
  costMicros: { min: 20_000, max: 80_000 },
  seed: 42,
};
