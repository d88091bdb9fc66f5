import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BedrockModel } from '../adapters/bedrock-model.js';
import { publishWork } from '../adapters/github-publisher.js';
import { fetchSnapshot } from '../adapters/github-snapshot.js';
import { type GitHubToken, withGitHubToken } from '../adapters/github-token.js';
import { scriptedModel } from '../adapters/scripted-model.js';
import type { AgentConfig } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';
import type { Agent } from '../ports/agent.js';
import { DEMO_SCRIPT, seedDemoSnapshot } from './demo.js';
import { llmAgent } from './llm.js';
import { BUNDLED_PRICES, priceOf } from './pricing.js';
import { simulateAgent } from './simulate.js';

/** What the worker holds for its agent and never hands to it: the GitHub token, the API root. */
export interface AgentWiring {
  readonly github?: GitHubToken;
  readonly githubApiUrl?: string;
}

export function createAgent(config: AgentConfig, wiring: AgentWiring = {}): Agent {
  switch (config.kind) {
    case 'simulate':
      return simulateAgent(config);
    case 'llm': {
      const price = priceOf(config.prices ?? BUNDLED_PRICES, config.model);
      const demo = config.model === 'scripted:demo';
      const inner = llmAgent({
        model: demo
          ? scriptedModel(config.model, DEMO_SCRIPT)
          : new BedrockModel({
              client: new BedrockRuntimeClient({
                maxAttempts: 6,
                retryMode: 'adaptive',
                // Converse is one request and one answer: HTTP/1.1 with keep-alive, like the
                // worker's other clients (the SDK's HTTP/2 default serves the streaming calls).
                requestHandler: new NodeHttpHandler(),
              }),
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
          await withGitHubToken(wiring.github, (token) =>
            fetchSnapshot(job.issue.repo, workspace, {
              ...(config.ref ? { ref: config.ref } : {}),
              ...(token ? { token } : {}),
              ...(wiring.githubApiUrl ? { baseUrl: wiring.githubApiUrl } : {}),
            }),
          );
        },
      });
      // Publishing is the worker's part, after the agent is done: the token stays here.
      return {
        name: inner.name,
        async run(job, workspace, context) {
          const result = await inner.run(job, workspace, context);
          if (result.continue || config.publish === 'none' || job.issue.repo.startsWith('mock/'))
            return result;
          const published = await withGitHubToken(wiring.github, (token) =>
            publishWork(job, workspace, result.summary, {
              mode: config.publish,
              ...(token ? { token } : {}),
              ...(wiring.githubApiUrl ? { baseUrl: wiring.githubApiUrl } : {}),
            }),
          );
          await workspace.write('agent/published.json', JSON.stringify(published, null, 2));
          return { summary: `${result.summary}${published.url ? ` (${published.url})` : ''}` };
        },
      };
    }
  }
}

/** One agent per distinct settings, built on first use: what a worker hands the core as `agentFor`. */
export function agentsBySettings(wiring: AgentWiring = {}): (config: AgentConfig) => Agent {
  const built = new Map<string, Agent>();
  return (config) => {
    const key = JSON.stringify(config);
    let agent = built.get(key);
    if (!agent) {
      agent = createAgent(config, wiring);
      built.set(key, agent);
    }
    return agent;
  };
}

/**
 * The agents a worker (the Lambda handler or a local worker process) hands the core: the
 * one its configuration names, and one per settings a message carries. The GitHub token
 * and API root stay in the wiring; no agent receives them.
 */
export function workerAgents(
  config: AgentConfig,
  access: { readonly github?: GitHubToken | undefined; readonly githubApiUrl?: string | undefined },
): { readonly agent: Agent; readonly agentFor: (config: AgentConfig) => Agent } {
  const wiring: AgentWiring = {
    ...(access.github ? { github: access.github } : {}),
    ...(access.githubApiUrl ? { githubApiUrl: access.githubApiUrl } : {}),
  };
  return { agent: createAgent(config, wiring), agentFor: agentsBySettings(wiring) };
}
