import type { GitHubToken } from '../adapters/github-token.js';
import type { AgentConfig } from '../domain/agent-settings.js';
import type { Agent } from '../ports/agent.js';
import type { Sandbox } from '../ports/sandbox.js';
import { simulateAgent } from './simulate.js';

/** What the worker holds for its agent and never hands to it: the GitHub token, the API root. */
export interface AgentWiring {
  readonly github?: GitHubToken;
  readonly githubApiUrl?: string;
  /** Where this worker runs an agent's commands; none: a run that asks for a sandbox fails. */
  readonly sandbox?: () => Sandbox;
  /** What a second of that sandbox costs when the run does not say (the stack's function's price). */
  readonly sandboxMicrosPerSecond?: number;
}

export function createAgent(config: AgentConfig, wiring: AgentWiring = {}): Agent {
  switch (config.kind) {
    case 'simulate':
      return simulateAgent(config);
    case 'llm':
      return lazyAgent('llm', config.model, () =>
        import('./llm-wiring.js').then((m) => m.createLlmAgent(config, wiring)),
      );
  }
}

/** An agent whose module is loaded when it first runs. */
function lazyAgent(name: string, model: string, load: () => Promise<Agent>): Agent {
  let loaded: Promise<Agent> | undefined;
  return {
    name,
    model,
    async run(job, workspace, context) {
      loaded ??= load();
      return (await loaded).run(job, workspace, context);
    },
  };
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
  access: {
    readonly github?: GitHubToken | undefined;
    readonly githubApiUrl?: string | undefined;
    readonly sandbox?: () => Sandbox;
    readonly sandboxMicrosPerSecond?: number;
  },
): { readonly agent: Agent; readonly agentFor: (config: AgentConfig) => Agent } {
  const wiring: AgentWiring = {
    ...(access.github ? { github: access.github } : {}),
    ...(access.githubApiUrl ? { githubApiUrl: access.githubApiUrl } : {}),
    ...(access.sandbox ? { sandbox: access.sandbox } : {}),
    ...(access.sandboxMicrosPerSecond ? { sandboxMicrosPerSecond: access.sandboxMicrosPerSecond } : {}),
  };
  return { agent: createAgent(config, wiring), agentFor: agentsBySettings(wiring) };
}
