import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fetchGitHubIssues, searchGitHubIssues } from '../shared/adapters/github-issues.js';
import { readIssuesFile } from '../shared/adapters/issues-file.js';
import { DEMO_MODEL } from '../shared/agents/model-ids.js';
import type { AgentConfig } from '../shared/domain/agent-settings.js';
import { FanoutError } from '../shared/domain/errors.js';
import {
  type Issue,
  jobKey,
  mockIssues,
  newRunId,
  PRIORITIES,
  type Priority,
  PrioritySchema,
  parseRunId,
  RepoNameSchema,
} from '../shared/domain/job.js';
import { formatSendSummary, sendIssues } from '../shared/domain/send.js';
import { usdToMicros } from '../shared/domain/units.js';
import { AGENT_HELP, AGENT_OPTIONS, agentFromFlags } from './agent-flags.js';
import { decimal, integer, joinNegativeNumbers } from './options.js';
import { type AwsClients, openTarget, type StackFacts, TARGET_HELP, TARGET_OPTIONS } from './targets.js';

export const SEND_HELP = `Usage: fanout send <source> <target> [options]

Sends a backlog of issues to a run. Every issue is validated before any is sent;
an issue already sent to the run is not sent again.

Sources (one of):
  --github OWNER/REPO    open issues of a repository; repeat for several, whose jobs
                         keep their owner/repo#n keys and are counted apart in the
                         report (token from GITHUB_TOKEN; GITHUB_API_URL for
                         GitHub Enterprise)
  --github-repos FILE    the repositories listed in FILE, one owner/repo a line (# for
                         comments); with --github or alone
  --github-org ORG       every repository of an organisation the token can see, through
                         GitHub's search (at most 1,000 issues a query: narrow it with
                         --label or --since); repeatable, with --github or alone
    --label NAME         only issues with this label (repeat for several)
    --state S            open, closed or all (default open)
    --limit N            at most N issues of each repository (of each organisation)
    --since DATE         only issues updated since (ISO 8601, e.g. 2026-11-01)
  --file PATH            a JSON array or JSONL file of {repo, number, title, body?, labels?, url?}
  --mock N               N generated issues

${TARGET_HELP}

Run:
  --run-id ID            the run to send to (default: a new run)
  --budget-usd USD       budget of a new run (default: the stack's budgetUsd, or 10)
  --repo-budget-usd USD  a new run's budget for each repository within its own: a
                         repository's jobs are SKIPPED once its spend reaches it, the
                         others go on (enforced as the run budget is)
  --priority P           high, normal or low, for every issue of this send; without
                         it, an issue's label priority:high|normal|low sets its own
                         (default normal). A waiting job starts before every waiting
                         job of a lower priority.
  --dry-run              print what would be sent, send nothing

The run's agent (each message carries it; without these flags, the workers' own):
${AGENT_HELP.replace(/^The agent:\n/, '')}`;

export interface SendCommandDeps {
  readonly aws?: AwsClients;
  readonly githubBaseUrl?: string;
  readonly out?: (text: string) => void;
}

export async function sendCommand(args: string[], deps: SendCommandDeps = {}): Promise<number> {
  const out = deps.out ?? ((text: string) => console.log(text));
  const { values } = parseArgs({
    args: joinNegativeNumbers(args),
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      github: { type: 'string', multiple: true },
      'github-repos': { type: 'string' },
      'github-org': { type: 'string', multiple: true },
      label: { type: 'string', multiple: true },
      state: { type: 'string' },
      limit: { type: 'string' },
      since: { type: 'string' },
      file: { type: 'string' },
      mock: { type: 'string' },
      'run-id': { type: 'string' },
      'budget-usd': { type: 'string' },
      priority: { type: 'string' },
      'repo-budget-usd': { type: 'string' },
      'dry-run': { type: 'boolean' },
      ...AGENT_OPTIONS,
      ...TARGET_OPTIONS,
    },
  });
  if (values.help) {
    out(SEND_HELP);
    return 0;
  }
  const listed = values['github-repos'] !== undefined ? readRepoList(values['github-repos']) : undefined;
  const github = values.github || listed ? [...(values.github ?? []), ...(listed ?? [])] : undefined;
  const orgs = values['github-org'];
  const fromGitHub = github || orgs ? true : undefined;
  const sources = [fromGitHub, values.file, values.mock].filter((v) => v !== undefined).length;
  if (sources !== 1) {
    throw new FanoutError(
      'INVALID_INPUT',
      'name one source: --github OWNER/REPO (or --github-repos, --github-org), --file PATH or --mock N',
    );
  }
  const agent = agentFromFlags(values);
  const budgetFlag =
    values['budget-usd'] === undefined
      ? undefined
      : decimal(values['budget-usd'], '--budget-usd', 10, 0, 1_000_000);
  const priority = values.priority !== undefined ? parsePriority(values.priority) : undefined;
  const repoBudget =
    values['repo-budget-usd'] === undefined
      ? undefined
      : decimal(values['repo-budget-usd'], '--repo-budget-usd', 2, 0.01, 1_000_000);
  const runId = values['run-id'] !== undefined ? parseRunId(values['run-id']) : newRunId(new Date());
  const state = values.state ?? 'open';
  if (state !== 'open' && state !== 'closed' && state !== 'all') {
    throw new FanoutError('INVALID_INPUT', `--state must be open, closed or all, not "${state}"`);
  }
  if (values.since !== undefined && Number.isNaN(Date.parse(values.since))) {
    throw new FanoutError(
      'INVALID_INPUT',
      `--since must be a date like 2026-11-01 or 2026-11-01T12:00:00Z, not "${values.since}"`,
    );
  }

  // GITHUB_API_URL names the API root for GitHub Enterprise (as in GitHub Actions).
  const githubBaseUrl = deps.githubBaseUrl ?? process.env.GITHUB_API_URL;
  // Every issue is read and validated before the target is touched.
  let issues: Issue[];
  if (values.mock !== undefined) issues = mockIssues(integer(values.mock, '--mock', 0, 1, 100_000));
  else if (values.file !== undefined) issues = await readIssuesFile(values.file);
  else {
    const repos = [...new Set(github ?? [])];
    const limit = values.limit !== undefined ? integer(values.limit, '--limit', 0, 1, 100_000) : undefined;
    const filters = {
      state,
      ...(values.label ? { labels: values.label } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(values.since ? { since: new Date(values.since).toISOString() } : {}),
    } as const;
    const connection = {
      ...(process.env.GITHUB_TOKEN ? { token: process.env.GITHUB_TOKEN } : {}),
      ...(githubBaseUrl ? { baseUrl: githubBaseUrl } : {}),
      onWait: (_ms: number, reason: string) => out(reason),
    };
    const found = new Map<string, Issue>();
    // One source after another, every one read before anything is sent: a repository or an
    // organisation that cannot be read stops the send with nothing sent, naming it.
    for (const repo of repos)
      for (const issue of await fetchGitHubIssues({ repo, ...filters }, connection))
        found.set(jobKey(issue), issue);
    // An organisation's search may find issues of a repository also named with --github: once each.
    for (const org of new Set(orgs ?? []))
      for (const issue of await searchGitHubIssues({ org, ...filters }, connection))
        if (!found.has(jobKey(issue))) found.set(jobKey(issue), issue);
    issues = [...found.values()];
    if (issues.length === 0) {
      const where = [...repos, ...(orgs ?? []).map((org) => `organisation ${org}`)].join(', ');
      out(
        `No ${state} issues in ${where}${values.label ? ` with label ${values.label.join(', ')}` : ''}: nothing to send.`,
      );
      return 0;
    }
  }

  const target = await openTarget(values, deps.aws);
  try {
    if (agent) checkModelAllowed(agent, target.stack);
    if (!values.local) checkSandboxAllowed(agent, target.stack);
    // A new run's budget: the flag, or the stack's own default (its BudgetUsd output), or 10.
    const budgetMicros = usdToMicros(budgetFlag ?? target.stack?.budgetUsd ?? 10);
    if (!values['dry-run'] && target.stack?.queueRetentionDays) {
      const warning = retentionWarning(issues.length, await target.queue.depth(), target.stack);
      if (warning) out(warning);
    }
    const summary = await sendIssues(
      issues,
      {
        runId,
        budgetMicros,
        budgetGiven: budgetFlag !== undefined,
        ...(agent ? { agent } : {}),
        ...(priority ? { priority } : {}),
        ...(repoBudget !== undefined ? { repoBudgetMicros: usdToMicros(repoBudget) } : {}),
      },
      { state: target.state, queue: target.queue, workspaces: target.workspaces, clock: Date.now },
      { dryRun: Boolean(values['dry-run']), keepMessages: target.keepsMessages },
    );
    if (!summary.dryRun) target.adopt(runId, summary.budgetMicros);
    out(`To ${target.description}:`);
    out(formatSendSummary(summary));
    return summary.failed.length > 0 ? 1 : 0;
  } finally {
    await target.close();
  }
}

/**
 * A run that asks for a sandbox the stack's workers do not have would fail every job with
 * SANDBOX_FAILED: refused here, before anything is sent. The stack's sandbox function does
 * not isolate the network, so `strict` is refused too.
 */
export function checkSandboxAllowed(agent: AgentConfig | undefined, stack: StackFacts | undefined): void {
  if (agent?.kind !== 'llm' || !agent.sandbox || stack === undefined) return;
  if (stack.sandbox !== 'lambda') {
    throw new FanoutError(
      'INVALID_INPUT',
      `--sandbox ${agent.sandbox}: the stack has no sandbox function: deploy it with -c sandbox=lambda, or send with --sandbox none`,
    );
  }
  if (agent.sandbox === 'strict') {
    throw new FanoutError(
      'INVALID_INPUT',
      "--sandbox strict: the stack's sandbox function does not isolate the network of a command: send with --sandbox auto",
    );
  }
}

/**
 * The workers' role may invoke only the stack's model: a run that asks for another
 * would see every job fail with AccessDenied, so it is refused here, before anything is sent.
 */
export function checkModelAllowed(agent: AgentConfig, stack: StackFacts | undefined): void {
  if (agent.kind !== 'llm' || agent.model === DEMO_MODEL || stack?.agentModel === undefined) return;
  if (agent.model === stack.agentModel) return;
  throw new FanoutError(
    'INVALID_INPUT',
    stack.agentModel === 'none'
      ? `the stack's workers may invoke no Bedrock model: deploy it with -c agentModel=${agent.model}, ` +
          'or send with --model scripted:demo'
      : `the stack's workers may invoke ${stack.agentModel} only, not ${agent.model}: send with ` +
          `--model ${stack.agentModel}, or deploy the stack with -c agentModel=${agent.model}`,
  );
}

/**
 * SQS drops a message that waits past the queue's retention without dead-lettering it.
 * Warns when the backlog, at the stack's workers and a whole invocation a job, could
 * wait longer than that.
 */
export function retentionWarning(
  sending: number,
  depths: { visible: number; inFlight: number },
  stack: StackFacts | undefined,
): string | undefined {
  if (!stack?.workers || !stack.timeoutSeconds || !stack.queueRetentionDays) return undefined;
  const backlog = sending + depths.visible + depths.inFlight;
  const worstSeconds = Math.ceil(backlog / stack.workers) * stack.timeoutSeconds;
  const retentionSeconds = stack.queueRetentionDays * 86_400;
  if (worstSeconds <= retentionSeconds) return undefined;
  return (
    `Warning: ${backlog} jobs on ${stack.workers} workers of ${stack.timeoutSeconds} s each may take ` +
    `${(worstSeconds / 86_400).toFixed(1)} days; SQS deletes a job that waits over ${stack.queueRetentionDays} days ` +
    'without dead-lettering it. Deploy more workers (-c workers=N) or send in smaller parts.'
  );
}

/**
 * A file of repositories, one `owner/name` a line; blank lines and `#` comments are
 * skipped. Every bad line is named with its number before anything is read from GitHub.
 */
export function readRepoList(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new FanoutError('INVALID_INPUT', `cannot read --github-repos ${path}: ${(error as Error).message}`);
  }
  const repos: string[] = [];
  const bad: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    if (RepoNameSchema.safeParse(line).success) repos.push(line);
    else bad.push(`line ${i + 1} ("${line}")`);
  });
  if (bad.length > 0) {
    throw new FanoutError(
      'INVALID_INPUT',
      `--github-repos ${path}: ${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} not owner/repo`,
    );
  }
  if (repos.length === 0)
    throw new FanoutError('INVALID_INPUT', `--github-repos ${path} lists no repository`);
  return repos;
}

function parsePriority(value: string): Priority {
  const parsed = PrioritySchema.safeParse(value);
  if (!parsed.success)
    throw new FanoutError('INVALID_INPUT', `--priority must be ${PRIORITIES.join(', ')}, not "${value}"`);
  return parsed.data;
}
