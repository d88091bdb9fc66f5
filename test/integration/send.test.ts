import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { LocalQueue } from '../../shared/adapters/local-queue.js';
import type { Issue } from '../../shared/domain/job.js';
import { sendIssues } from '../../shared/domain/send.js';
import { type StateFixture, startState } from '../support/engines.js';

let fx: StateFixture;
let workspaces: FolderWorkspaceStore;
beforeAll(async () => {
  fx = await startState();
  workspaces = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'fanout-send-')));
});
afterAll(() => fx.close());

const issue = (repo: string, number: number): Issue => ({ repo, number, title: 't', body: '', labels: [] });
const queue = () => LocalQueue.open(undefined, { visibilityTimeoutMs: 60_000, maxReceiveCount: 3 });

describe('sending to a run', () => {
  it('sends an issue once whatever the case of its repository name, as GitHub names are case-insensitive', async () => {
    const q = queue();
    const deps = { state: fx.state, queue: q, workspaces, clock: Date.now };
    const first = await sendIssues([issue('acme/api', 7)], { runId: 'case', budgetMicros: 1000 }, deps);
    const again = await sendIssues(
      [issue('ACME/API', 7), issue('Acme/Api', 7)],
      { runId: 'case', budgetMicros: 1000 },
      deps,
    );
    expect(first.sent).toEqual(['acme/api#7']);
    expect(again.sent).toEqual([]);
    expect(again.duplicates).toEqual(['acme/api#7', 'acme/api#7']);
    expect(q.pendingBodies()).toHaveLength(1);
  });

  it('refuses a budget asked for an existing run that has another, and sends nothing', async () => {
    const q = queue();
    const deps = { state: fx.state, queue: q, workspaces, clock: Date.now };
    await sendIssues([issue('acme/api', 1)], { runId: 'budget', budgetMicros: 600_000 }, deps);
    await expect(
      sendIssues(
        [issue('acme/api', 2)],
        { runId: 'budget', budgetMicros: 10_000_000, budgetGiven: true },
        deps,
      ),
    ).rejects.toThrow(
      /run budget exists with a budget of \$0\.60; a run keeps the budget it was created with/,
    );
    expect(q.pendingBodies()).toHaveLength(1);
    expect(await fx.state.getJob('budget', 'acme/api#2')).toBeUndefined();
    // The same budget, or none asked for, is fine.
    await sendIssues(
      [issue('acme/api', 2)],
      { runId: 'budget', budgetMicros: 600_000, budgetGiven: true },
      deps,
    );
    await sendIssues([issue('acme/api', 3)], { runId: 'budget', budgetMicros: 10_000_000 }, deps);
    expect((await fx.state.getRun('budget'))?.budgetMicros).toBe(600_000);
  });
});
