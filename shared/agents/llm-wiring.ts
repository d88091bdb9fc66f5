import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BedrockModel } from '../adapters/bedrock-model.js';
import { publishWork } from '../adapters/github-publisher.js';
import { fetchSnapshot } from '../adapters/github-snapshot.js';
import { withGitHubToken } from '../adapters/github-token.js';
import { refuseUnisolated } from '../adapters/process-sandbox.js';
import { scriptedModel } from '../adapters/scripted-model.js';
import type { AgentConfig } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';
import type { Agent } from '../ports/agent.js';
import type { Sandbox } from '../ports/sandbox.js';
import { DEMO_REVIEW_SCRIPT, DEMO_SCRIPT, DEMO_SCRIPT_WITH_TESTS, seedDemoSnapshot } from './demo.js';
import type { AgentWiring } from './index.js';
import { llmAgent } from './llm.js';
import { BUNDLED_PRICES, priceOf } from './pricing.js';

/**
 * The llm agent wired to its model, its snapshot and its publisher. A module of its own,
 * loaded on the first llm job: a worker of the simulate agent never loads the Bedrock
 * client, Octokit or the model's tools (a third of a worker's start-up and memory).
 */
export function createLlmAgent(config: Extract<AgentConfig, { kind: 'llm' }>, wiring: AgentWiring): Agent {
  const price = priceOf(config.prices ?? BUNDLED_PRICES, config.model);
  const demo = config.model === 'scripted:demo';
  const sandbox = sandboxFor(config.sandbox ?? 'none', wiring);
  const inner = llmAgent({
    ...(sandbox ? { sandbox } : {}),
    ...(config.testCommand ? { testCommand: config.testCommand } : {}),
    ...(sandbox && (config.sandboxMicrosPerSecond ?? wiring.sandboxMicrosPerSecond)
      ? { sandboxMicrosPerSecond: config.sandboxMicrosPerSecond ?? wiring.sandboxMicrosPerSecond }
      : {}),
    ...(config.maxRevisions !== undefined ? { maxRevisions: config.maxRevisions } : {}),
    model: demo
      ? scriptedModel(config.model, sandbox ? DEMO_SCRIPT_WITH_TESTS : DEMO_SCRIPT, DEMO_REVIEW_SCRIPT)
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
      if (result.continue || config.publish === 'none' || job.issue.repo.startsWith('mock/')) return result;
      // A patch the reviewer rejected stays in the workspace; one its tests did not verify too,
      // unless the run says otherwise.
      if (result.verdict === 'rejected')
        return { ...result, summary: `${result.summary} (not published: rejected by the reviewer)` };
      if (result.verdict === 'unverified' && !config.publishUnverified)
        return {
          ...result,
          summary: `${result.summary} (not published: unverified; --publish-unverified publishes it)`,
        };
      const published = await withGitHubToken(wiring.github, (token) =>
        publishWork(job, workspace, result.summary, {
          mode: config.publish,
          ...(token ? { token } : {}),
          ...(wiring.githubApiUrl ? { baseUrl: wiring.githubApiUrl } : {}),
        }),
      );
      await workspace.write('agent/published.json', JSON.stringify(published, null, 2));
      return { ...result, summary: `${result.summary}${published.url ? ` (${published.url})` : ''}` };
    },
  };
}

/**
 * The worker's sandbox as the run asks for it: none; any (`auto`); or one that isolates the
 * network at least (`strict`: a room is refused where it does not, with what to do).
 */
export function sandboxFor(mode: 'none' | 'auto' | 'strict', wiring: AgentWiring): Sandbox | undefined {
  if (mode === 'none') return undefined;
  const sandbox = wiring.sandbox?.();
  if (!sandbox) {
    throw new FanoutError(
      'SANDBOX_FAILED',
      `the run asks for --sandbox ${mode}, and this worker has none (a stack deployed without -c sandbox=lambda): deploy with it, or send with --sandbox none`,
    );
  }
  if (mode === 'auto') return sandbox;
  return {
    isolation: () => sandbox.isolation(),
    open: async (owner) => {
      refuseUnisolated(mode, await sandbox.isolation());
      return sandbox.open(owner);
    },
  };
}
