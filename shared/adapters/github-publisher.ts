import { FanoutError } from '../domain/errors.js';
import type { JobMessage } from '../domain/job.js';
import { REPO_DIR, type Workspace } from '../ports/workspace.js';
import { githubClient } from './github-client.js';

export type PublishMode = 'none' | 'comment' | 'pr';

export interface PublishOptions {
  readonly mode: PublishMode;
  /** The worker's; never given to the agent. */
  readonly token?: string;
  readonly baseUrl?: string;
}

export interface Published {
  readonly mode: PublishMode;
  readonly url?: string;
  /** True when an earlier run of the job had published it already: nothing new was made. */
  readonly already?: boolean;
}

const read = async (workspace: Workspace, path: string) => {
  const bytes = await workspace.read(path);
  return bytes ? Buffer.from(bytes).toString('utf8') : '';
};

/** The label of a pull request whose tests did not verify it (published with --publish-unverified). */
export const UNVERIFIED_LABEL = 'fanout:unverified';

interface TestRunRecord {
  command: string;
  exitCode: number | null;
  stoppedBy?: string;
  tail: string;
}

interface Verification {
  verdict: string;
  reason: string;
  baseline?: TestRunRecord;
  after?: TestRunRecord;
  reviews?: { decision: string; reasons: string }[];
}

const fence = (text: string) => `\`\`\`\n${text.replaceAll('```', "'''")}\n\`\`\``;

/** What the tests and the reviewer said, for the pull request's body (none without a sandbox). */
async function verificationSection(workspace: Workspace): Promise<{ text: string; verdict?: string }> {
  const raw = await read(workspace, 'agent/verification.json');
  if (!raw) return { text: '' };
  const v = JSON.parse(raw) as Verification;
  const run = (label: string, r?: TestRunRecord) =>
    r
      ? `**${label}**: \`${r.command}\` ${r.stoppedBy ? `stopped by its ${r.stoppedBy} limit` : `exit code ${r.exitCode}`}\n\n${fence(r.tail.slice(-1500))}`
      : `**${label}**: not run`;
  const reviews = (v.reviews ?? []).map(
    (r, i) => `${i + 1}. ${r.decision === 'approve' ? 'approved' : 'changes requested'}: ${r.reasons}`,
  );
  return {
    verdict: v.verdict,
    text: [
      `### Verification: ${v.verdict}`,
      v.reason,
      '',
      run('Tests before the change', v.baseline),
      '',
      run('Tests after the change', v.after),
      ...(reviews.length > 0 ? ['', '### Review', ...reviews] : []),
    ].join('\n'),
  };
}

/**
 * Publishes an agent's finished work, as the worker: a comment with the summary and
 * the patch on the issue, or a branch `fanout/issue-N` made through the Git Data API
 * (blobs, tree, commit, ref) and a draft pull request that closes the issue, linked
 * from a comment. A job already published (its branch exists) is not published twice.
 */
export async function publishWork(
  job: JobMessage,
  workspace: Workspace,
  summary: string,
  options: PublishOptions,
): Promise<Published> {
  if (options.mode === 'none') return { mode: 'none' };
  if (!options.token) {
    throw new FanoutError(
      'AGENT_FAILED',
      `--publish ${options.mode} needs GITHUB_TOKEN with write access to ${job.issue.repo}`,
    );
  }
  const [owner = '', repo = ''] = job.issue.repo.split('/');
  const issue_number = job.issue.number;
  const octokit = githubClient(options);
  const patch = await read(workspace, 'agent/diff.patch');
  const verification = await verificationSection(workspace);
  const checked = verification.text ? `\n\n${verification.text}` : '';
  if (options.mode === 'comment') {
    const { data } = await octokit.rest.issues.createComment({
      owner,
      repo,
      issue_number,
      body: `${summary}\n\n\`\`\`diff\n${patch}\`\`\`${checked}\n\n_Proposed by fanout._`,
    });
    return { mode: 'comment', url: data.html_url };
  }

  const branch = `fanout/issue-${issue_number}`;
  try {
    const { data: existing } = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` });
    return { mode: 'pr', already: true, url: existing.url };
  } catch (error) {
    if ((error as { status?: number }).status !== 404) throw error;
  }
  const { data: repository } = await octokit.rest.repos.get({ owner, repo });
  const base = repository.default_branch;
  const { data: baseRef } = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${base}` });
  const { data: baseCommit } = await octokit.rest.git.getCommit({
    owner,
    repo,
    commit_sha: baseRef.object.sha,
  });
  const changed = (await read(workspace, 'agent/changed-files.txt')).split('\n').filter(Boolean);
  const tree = [];
  for (const path of changed) {
    const content = Buffer.from((await workspace.read(`${REPO_DIR}/${path}`)) ?? new Uint8Array()).toString(
      'base64',
    );
    const { data: blob } = await octokit.rest.git.createBlob({ owner, repo, content, encoding: 'base64' });
    tree.push({ path, mode: '100644' as const, type: 'blob' as const, sha: blob.sha });
  }
  const { data: newTree } = await octokit.rest.git.createTree({
    owner,
    repo,
    base_tree: baseCommit.tree.sha,
    tree,
  });
  const { data: commit } = await octokit.rest.git.createCommit({
    owner,
    repo,
    message: `${summary}\n\nCloses #${issue_number}`,
    tree: newTree.sha,
    parents: [baseCommit.sha],
  });
  await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha: commit.sha });
  const { data: pull } = await octokit.rest.pulls.create({
    owner,
    repo,
    title: `${job.issue.title} (#${issue_number})`,
    head: branch,
    base,
    body: `Closes #${issue_number}\n\n${summary}${checked}\n\n_Proposed by fanout._`,
    draft: true,
  });
  if (verification.verdict === 'unverified')
    await octokit.rest.issues.addLabels({
      owner,
      repo,
      issue_number: pull.number,
      labels: [UNVERIFIED_LABEL],
    });
  await octokit.rest.issues.createComment({
    owner,
    repo,
    issue_number,
    body: `fanout opened ${pull.html_url}`,
  });
  return { mode: 'pr', url: pull.html_url };
}
