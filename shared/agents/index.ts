import { z } from 'zod';
import type { Agent } from '../ports/agent.js';
import { simulateAgent } from './simulate.js';

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
]);
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

export const DEFAULT_AGENT: AgentConfig = {
  kind: 'simulate',
  durationMs: { min: 1000, max: 3000 },
  failRate: 0,
  costMicros: { min: 20_000, max: 80_000 },
  seed: 42,
};

export function createAgent(config: AgentConfig): Agent {
  switch (config.kind) {
    case 'simulate':
      return simulateAgent(config);
  }
}
