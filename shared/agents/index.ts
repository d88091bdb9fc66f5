import { z } from 'zod';
import { scriptedModel } from '../adapters/scripted-model.js';
import { FanoutError } from '../domain/errors.js';
import type { Agent } from '../ports/agent.js';
import { DEMO_SCRIPT, seedDemoSnapshot } from './demo.js';
import { llmAgent } from './llm.js';
import { loadPriceTable, priceOf } from './pricing.js';
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
  z.object({
    kind: z.literal('llm'),
    /** A model id of the price table; `scripted:demo` is the offline demo. */
    model: z.string().min(1),
    maxSteps: z.number().int().min(1).max(500).default(30),
    maxOutputTokens: z.number().int().min(1).max(64_000).default(4096),
    maxCostPerJobMicros: z.number().int().nonnegative().default(2_000_000),
    /** A price table of the user's own (path); the one kept with the code otherwise. */
    prices: z.string().optional(),
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
    case 'llm': {
      const price = priceOf(loadPriceTable(config.prices), config.model);
      if (config.model !== 'scripted:demo') {
        throw new FanoutError(
          'INVALID_INPUT',
          `model "${config.model}": only scripted:demo runs in this version: the Bedrock adapter is built, but fetching snapshots of GitHub repositories, which it needs, is not yet`,
        );
      }
      return llmAgent({
        model: scriptedModel(config.model, DEMO_SCRIPT),
        price,
        maxSteps: config.maxSteps,
        maxOutputTokens: config.maxOutputTokens,
        maxCostPerJobMicros: config.maxCostPerJobMicros,
        prepare: async (job, workspace) => {
          if (!job.issue.repo.startsWith('mock/')) {
            throw new FanoutError(
              'AGENT_FAILED',
              `the demo has a snapshot of mock/* repositories only, not ${job.issue.repo}`,
            );
          }
          await seedDemoSnapshot(workspace);
        },
      });
    }
  }
}
