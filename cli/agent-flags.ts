import { BUNDLED_PRICES, priceOf, readPriceTable } from '../shared/agents/pricing.js';
import {
  type AgentConfig,
  DEFAULT_AGENT,
  LLM_DEFAULTS,
  MAX_RUN_TIME_MS,
} from '../shared/domain/agent-settings.js';
import { FanoutError } from '../shared/domain/errors.js';
import { parseDurationRange, parseUsdRange, usdToMicros } from '../shared/domain/units.js';
import { decimal, integer } from './options.js';

/** The agent flags, shared by `run` (the local run's agent) and `send` (a run's agent on AWS). */
export const AGENT_OPTIONS = {
  agent: { type: 'string' },
  model: { type: 'string' },
  'max-cost-per-job-usd': { type: 'string' },
  'max-steps': { type: 'string' },
  publish: { type: 'string' },
  sandbox: { type: 'string' },
  'test-command': { type: 'string' },
  'publish-unverified': { type: 'boolean' },
  'sandbox-usd-per-hour': { type: 'string' },
  'max-revisions': { type: 'string' },
  ref: { type: 'string' },
  prices: { type: 'string' },
  duration: { type: 'string' },
  'fail-rate': { type: 'string' },
  'cost-usd': { type: 'string' },
  seed: { type: 'string' },
} as const;

export const AGENT_HELP = `The agent:
  --agent NAME           simulate (default) or llm
  --model ID             llm: scripted:demo (offline, mock issues), or a Bedrock model id of
                         shared/agents/model-prices.json or its inference profile
                         (us./eu./apac./global. + id; AWS credentials; GITHUB_TOKEN for
                         private repositories)
  --max-cost-per-job-usd USD   llm: a job's own spending cap (default ${LLM_DEFAULTS.maxCostPerJobMicros / 1e6})
  --max-steps N          llm: model calls per job (default ${LLM_DEFAULTS.maxSteps})
  --ref REF              llm: the branch, tag or commit to work on (default: the default branch)
  --prices FILE          llm: a model price table of your own, shaped like model-prices.json
  --publish MODE         llm: none (default: the patch stays in the workspace), comment
                         (summary and patch on the issue) or pr (a draft pull request
                         from branch fanout/issue-N); needs GITHUB_TOKEN with write access
  --sandbox MODE         llm: none (default: the agent runs nothing), auto (run_command in a
                         sandbox with what isolation this machine gives, named at start) or
                         strict (only where the network is isolated); default none, auto
                         for --model scripted:demo with fanout run. To a stack: auto, if
                         it was deployed with -c sandbox=lambda
  --publish-unverified   llm with a sandbox: publish patches the tests did not verify too,
                         labelled so (by default only verified ones are; rejected ones
                         never; without a sandbox, all)
  --max-revisions N      llm with a sandbox: times the implementer may revise a change the
                         reviewer sent back (default ${LLM_DEFAULTS.maxRevisions}; 0: one review, no revision)
  --sandbox-usd-per-hour USD  llm with a sandbox: what its compute costs, reserved and settled
                         in the run's budget like the model's tokens (default 0 locally;
                         on a stack, its sandbox function's GB-second price)
  --test-command CMD     llm with a sandbox: the repository's tests, run before the change and
                         after it (default: from package.json, pyproject.toml, Makefile,
                         go.mod or Cargo.toml)

The simulate agent:
  --duration D           time per job: 1s, 250ms, 2m or a range 1s-3s (default ${DEFAULT_AGENT.durationMs.min / 1000}s-${DEFAULT_AGENT.durationMs.max / 1000}s)
  --fail-rate R          share of jobs that fail, 0-1 (default ${DEFAULT_AGENT.failRate})
  --cost-usd USD         cost per job, or a range 0.01-0.05 (default ${DEFAULT_AGENT.costMicros.min / 1e6}-${DEFAULT_AGENT.costMicros.max / 1e6})
  --seed N               the same seed repeats a run exactly (default ${DEFAULT_AGENT.seed})`;

type AgentFlagValues = {
  [K in keyof typeof AGENT_OPTIONS]?: (typeof AGENT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
};

/** The agent the flags describe, checked (an unknown model fails here); undefined when no agent flag is given. */
export function agentFromFlags(values: AgentFlagValues): AgentConfig | undefined {
  const given = (Object.keys(AGENT_OPTIONS) as (keyof typeof AGENT_OPTIONS)[]).some(
    (flag) => values[flag] !== undefined,
  );
  const name = values.agent ?? 'simulate';
  if (name !== 'simulate' && name !== 'llm')
    throw new FanoutError('INVALID_INPUT', `--agent must be simulate or llm, not "${name}"`);
  const publish = values.publish ?? 'none';
  const sandbox = values.sandbox ?? 'none';
  if (sandbox !== 'none' && sandbox !== 'auto' && sandbox !== 'strict')
    throw new FanoutError('INVALID_INPUT', `--sandbox must be none, auto or strict, not "${sandbox}"`);
  if (publish !== 'none' && publish !== 'comment' && publish !== 'pr') {
    throw new FanoutError('INVALID_INPUT', `--publish must be none, comment or pr, not "${publish}"`);
  }
  const simulate: AgentConfig = {
    kind: 'simulate',
    // A job may run 6 hours in all (RUN_TIME_EXCEEDED after that).
    durationMs: values.duration
      ? parseDurationRange(values.duration, '--duration', MAX_RUN_TIME_MS)
      : DEFAULT_AGENT.durationMs,
    failRate: decimal(values['fail-rate'], '--fail-rate', DEFAULT_AGENT.failRate, 0, 1),
    costMicros: values['cost-usd']
      ? parseUsdRange(values['cost-usd'], '--cost-usd')
      : DEFAULT_AGENT.costMicros,
    seed: integer(values.seed, '--seed', DEFAULT_AGENT.seed, 0, 2 ** 31 - 1),
  };
  if (!given) return undefined;
  if (name === 'simulate') return simulate;
  if (!values.model) {
    throw new FanoutError(
      'INVALID_INPUT',
      '--agent llm needs --model: scripted:demo (offline) or a Bedrock model id of the price table',
    );
  }
  const prices = values.prices ? readPriceTable(values.prices) : undefined;
  priceOf(prices ?? BUNDLED_PRICES, values.model);
  return {
    kind: 'llm',
    model: values.model,
    maxSteps: integer(values['max-steps'], '--max-steps', LLM_DEFAULTS.maxSteps, 1, 500),
    maxOutputTokens: LLM_DEFAULTS.maxOutputTokens,
    maxCostPerJobMicros: values['max-cost-per-job-usd']
      ? usdToMicros(decimal(values['max-cost-per-job-usd'], '--max-cost-per-job-usd', 0, 0, 10_000))
      : LLM_DEFAULTS.maxCostPerJobMicros,
    publish,
    ...(sandbox !== 'none' ? { sandbox } : {}),
    ...(values['test-command'] ? { testCommand: values['test-command'] } : {}),
    ...(values['publish-unverified'] ? { publishUnverified: true } : {}),
    ...(values['max-revisions'] !== undefined
      ? {
          maxRevisions: integer(values['max-revisions'], '--max-revisions', LLM_DEFAULTS.maxRevisions, 0, 10),
        }
      : {}),
    ...(values['sandbox-usd-per-hour']
      ? {
          sandboxMicrosPerSecond: Math.round(
            usdToMicros(decimal(values['sandbox-usd-per-hour'], '--sandbox-usd-per-hour', 0, 0, 1000)) / 3600,
          ),
        }
      : {}),
    ...(values.ref ? { ref: values.ref } : {}),
    ...(prices ? { prices } : {}),
  };
}
