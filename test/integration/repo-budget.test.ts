/**
 * A repository's budget within a run's (`--repo-budget-usd`): the same ledger, the same
 * conditional writes, raced by many workers on dynalite. A reservation is granted only when
 * the repository's ledger and the run's both grant it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRunLedger, ledgerTotals, ledgerViolations } from '../../shared/adapters/dynamo/run-ledger.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { FanoutError } from '../../shared/domain/errors.js';
import { AttemptLedger, repoLedgerId } from '../../shared/domain/ledger.js';
import { seededRandom } from '../../shared/domain/random.js';
import { sleep } from '../../shared/domain/sleep.js';
import { type StateFixture, startState } from '../support/engines.js';

let fx: StateFixture;
beforeAll(async () => {
  fx = await startState('fanout-repo-budget');
});
afterAll(() => fx.close());

const repos = ['acme/api', 'acme/web', 'acme/docs'];
const worst = 1_000;
const repoBudget = 6_000; // about eight jobs' spend each

/**
 * 90 workers race 20 to 60 jobs of each repository, each job one reservation of the worst
 * case settled at 40-100% of it, while a sampler reads every ledger: each item's rules
 * always, and the budget whenever its read is one instant's.
 */
async function race(runId: string, runBudget: number) {
  const { state } = fx;
  await state.createRun({ runId, budgetMicros: runBudget, createdAt: 0, ledgerShards: 8 });
  for (const repo of repos) {
    await state.createRun({
      runId: repoLedgerId(runId, repo),
      budgetMicros: repoBudget,
      createdAt: 0,
      ledgerShards: 4,
      listed: false,
    });
  }
  const reader = new DynamoRunLedger({
    tableName: 'fanout-repo-budget',
    client: embeddedDynamoClient(fx.engine.endpoint),
  });
  const ledgers = [
    { id: runId, budget: runBudget },
    ...repos.map((repo) => ({ id: repoLedgerId(runId, repo), budget: repoBudget })),
  ];
  const violations: string[] = [];
  const most = new Map<string, number>();
  let consistent = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const { id, budget } of ledgers) {
        const items = await reader.readLedger(id);
        if (!items) continue;
        violations.push(...ledgerViolations(items, budget).map((v) => `${id}: ${v}`));
        if (!items.consistent) continue;
        consistent++;
        const t = ledgerTotals(items.shards);
        most.set(id, Math.max(most.get(id) ?? 0, t.spentMicros + t.reservedMicros + t.abandonedMicros));
      }
    }
  })();

  const random = seededRandom(7, runId);
  const jobsOf: Record<string, number> = { 'acme/api': 60, 'acme/web': 20, 'acme/docs': 20 };
  const jobs = repos.flatMap((repo) =>
    Array.from({ length: jobsOf[repo] ?? 0 }, (_, i) => ({ repo, key: `${repo}#${i + 1}` })),
  );
  // Shuffled, so every repository's jobs race every other's.
  for (let i = jobs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [jobs[i], jobs[j]] = [jobs[j] as (typeof jobs)[number], jobs[i] as (typeof jobs)[number]];
  }
  const outcome = new Map<string, { spent: number; refused: string | undefined }>();
  const queue = [...jobs];
  const worker = async (w: number) => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const ledger = new AttemptLedger(
        state,
        { runId, jobKey: job.key, owner: `w${w}/${job.key}`, repoLedger: repoLedgerId(runId, job.repo) },
        Date.now,
      );
      try {
        const reservation = await ledger.reserve(worst);
        await sleep(random() * 20);
        await reservation.settle(Math.round(worst * (0.4 + 0.6 * random())));
        outcome.set(job.key, { spent: await ledger.confirmedMicros(), refused: undefined });
      } catch (error) {
        if (!(error instanceof FanoutError) || error.code !== 'BUDGET_EXHAUSTED') throw error;
        outcome.set(job.key, { spent: 0, refused: error.message });
      }
    }
  };
  await Promise.all(Array.from({ length: 90 }, (_, w) => worker(w)));
  sampling = false;
  await sampler;

  expect(violations).toEqual([]);
  expect(consistent).toBeGreaterThan(0);
  expect(outcome.size).toBe(jobs.length);
  for (const { id, budget } of ledgers) expect(most.get(id) ?? 0).toBeLessThanOrEqual(budget);
  // At the end nothing is reserved anywhere, each repository's ledger counts what its jobs
  // spent, and the run's counts the same money once: each reservation was held in both and
  // settled in both, and one the run refused was given back to the repository's.
  const final = async (id: string) => {
    const run = await state.getRun(id);
    expect(run).toMatchObject({ reservedMicros: 0, openReservations: 0, abandonedMicros: 0 });
    return run?.spentMicros ?? 0;
  };
  const spent = new Map<string, number>();
  for (const repo of repos) {
    const own = await final(repoLedgerId(runId, repo));
    expect(own).toBeLessThanOrEqual(repoBudget);
    const recorded = jobs.filter((j) => j.repo === repo).map((j) => outcome.get(j.key)?.spent ?? 0);
    expect(own).toBe(recorded.reduce((n, m) => n + m, 0));
    spent.set(repo, own);
  }
  const runSpent = await final(runId);
  expect(runSpent).toBeLessThanOrEqual(runBudget);
  expect(runSpent).toBe([...spent.values()].reduce((n, m) => n + m, 0));
  const refusals = [...outcome.values()].flatMap((o) => (o.refused ? [o.refused] : []));
  return { spent, runSpent, refusals };
}

describe('per-repository budgets raced by 90 workers on dynalite', () => {
  it('stops each repository at its own budget and no sooner, while the run has room', async () => {
    const { spent, refusals } = await race('repo-race', 1_000_000);
    // A ledger refuses only when what is unspent cannot cover the worst case: each repository
    // (20 to 60 jobs of about 700) is spent to within one job of its budget, and only those refuse.
    for (const repo of repos) expect(repoBudget - (spent.get(repo) ?? 0)).toBeLessThan(worst);
    expect(refusals.length).toBeGreaterThan(60);
    for (const reason of refusals) expect(reason).toMatch(/^the budget of acme\/(api|web|docs) cannot cover/);
    // A repository ledger is not a run.
    expect((await fx.state.listRuns(10)).map((r) => r.runId)).toEqual(['repo-race']);
  }, 120_000);

  it("holds both budgets when the run's binds before the repositories' do", async () => {
    const runBudget = 9_000; // half of what the three repositories' budgets allow together
    const { runSpent, refusals } = await race('run-binds', runBudget);
    expect(runBudget - runSpent).toBeLessThan(worst);
    expect(refusals.some((r) => /^the run budget cannot cover/.test(r))).toBe(true);
  }, 120_000);
});
