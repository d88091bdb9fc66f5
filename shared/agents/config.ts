import { z } from 'zod';
import { PriceTableSchema } from './pricing.js';

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
    maxSteps: z.number().int().min(1).max(500).default(30),
    maxOutputTokens: z.number().int().min(1).max(64_000).default(4096),
    maxCostPerJobMicros: z.number().int().nonnegative().default(2_000_000),
    /** A price table of the user's own (its content); the one bundled with the code otherwise. */
    prices: PriceTableSchema.optional(),
    /** The branch, tag or commit to snapshot; the default branch when absent. */
    ref: z.string().min(1).max(255).optional(),
    /** What the worker does with a finished patch. */
    publish: z.enum(['none', 'comment', 'pr']).default('none'),
  }),
]);
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export const DEFAULT_AGENT: AgentConfig = {
  kind: 'simulate',
  durationMs: { min: 1000, max: 3000 },
  failRate: 0,
  costMicros: { min: 20_000, max: 80_000 },
  seed: 42,
};
