import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { z } from 'zod';
import { BedrockModel } from '../adapters/bedrock-model.js';
import { publishWork } from '../adapters/github-publisher.js';
import { fetchSnapshot } from '../adapters/github-snapshot.js';
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

/** What the worker holds for its agent and never hands to it: the GitHub token, the API root. */
export interface AgentWiring {
  readonly githubToken?: string;
  readonly githubApiUrl?: string;
}

export function createAgent(config: AgentConfig, wiring: AgentWiring = {}): Agent {
  switch (config.kind) {
    case 'simulate':
      return simulateAgent(config);
    case 'llm': {
      const price = priceOf(loadPriceTable(config.prices), config.model);
      const demo = config.model === 'scripted:demo';
      const inner = llmAgent({
        model: demo
          ? scriptedModel(config.model, DEMO_SCRIPT)
          : new BedrockModel({
              client: new BedrockRuntimeClient({ maxAttempts: 6, retryMode: 'adaptive' }),
              modelId: config.model,
            }),
        price,
        maxSteps: config.maxSteps,
        maxOutputTokens: config.maxOutputTokens,
        maxCostPerJobMicros: config.maxCostPerJobMicros,
        // The worker fetches the snapshot with its token; the agent only sees the files.
        prepare: async (job, workspace) => {
          if (job.issue.repo.startsWith('mock/')) {
            if (!demo)
              throw new FanoutError(
                'AGENT_FAILED',
                `${job.issue.repo} is a mock repository: use --model scripted:demo`,
              );
            await seedDemoSnapshot(workspace);
            return;
          }
          await fetchSnapshot(job.issue.repo, workspace, {
            ...(wiring.githubToken ? { token: wiring.githubToken } : {}),
            ...(wiring.githubApiUrl ? { baseUrl: wiring.githubApiUrl } : {}),
          });
        },
      });
      // Publishing is the worker's part, after the agent is done: the token stays here.
      return {
        name: inner.name,
        async run(job, workspace, context) {
          const result = await inner.run(job, workspace, context);
          if (result.continue || config.publish === 'none' || job.issue.repo.startsWith('mock/'))
            return result;
          const published = await publishWork(job, workspace, result.summary, {
            mode: config.publish,
            ...(wiring.githubToken ? { token: wiring.githubToken } : {}),
            ...(wiring.githubApiUrl ? { baseUrl: wiring.githubApiUrl } : {}),
          });
          await workspace.write('agent/published.json', JSON.stringify(published, null, 2));
          return { summary: `${result.summary}${published.url ? ` (${published.url})` : ''}` };
        },
      };
    }
  }
}
