import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { LocalQueue } from '../../shared/adapters/local-queue.js';
import { recordMetrics } from '../../shared/adapters/powertools.js';
import { FanoutError } from '../../shared/domain/errors.js';
import { type Issue, type JobMessage, jobKey } from '../../shared/domain/job.js';
import { reservationId } from '../../shared/domain/ledger.js';
import { processBatch, type WorkerDeps, type WorkerEvent } from '../../shared/domain/worker.js';
import type { Agent } from '../../shared/ports/agent.js';
import type { SendEntry } from '../../shared/ports/queue.js';
import { type StateFixture, startState } from '../support/engines.js';

let fx: StateFixture;
let root: string;
beforeAll(async () => {
  fx = await startState();
  root = await mkdtemp(join(tmpdir(), 'fanout-worker-'));
});
afterAll(() => fx.close());

const silent = { info: () => {}, warn: () => {}, error: () => {} };
const issue = (n: number): Issue => ({
  repo: 'acme/api',
  number: n,
  title: `Issue ${n}`,
  body: '',
  labels: [],
});
const body = (runId: string, n: number) =>
  JSON.stringify({ v: 1, runId, issue: issue(n), sentAt: 1 } satisfies JobMessage);

/** An agent whose behaviour per issue number the test decides. */
function scriptedAgent(script: Record<number, 'ok' | 'throw' | 'retryable'>, costMicros = 1000): Agent {
  return {
    name: 'scripted',
    async run(job, workspace, context) {
      const reservation = await context.spend.reserve(costMicros);
      await reservation.settle(costMicros);
      const action = script[job.issue.number] ?? 'ok';
      if (action === 'throw') throw new Error('the agent broke');
      if (action === 'retryable')
        throw new FanoutError('STATE_UNAVAILABLE', 'try later', { retryable: true });
      await workspace.write('out.txt', jobKey(job.issue));
      return { summary: 'ok' };
    },
  };
}

async function setup(runId: string, numbers: number[], budgetMicros = 1_000_000) {
  await fx.state.createRun({ runId, budgetMicros, createdAt: 0 });
  const queue = LocalQueue.open(undefined, { visibilityTimeoutMs: 60_000, maxReceiveCount: 3 });
  await queue.send(numbers.map((n) => ({ id: String(n), body: body(runId, n) })));
  return queue;
}

function deps(queue: LocalQueue, agent: Agent, overrides: Partial<WorkerDeps> = {}): WorkerDeps {
  return {
    state: fx.state,
    queue,
    workspaces: new FolderWorkspaceStore(root),
    agent,
    logger: silent,
    clock: Date.now,
    workerId: 'worker-01',
    owner: `worker-01/${Math.random()}`,
    leaseMs: 10_000,
    heartbeatMs: 1_000,
    maxReceiveCount: 3,
    deadline: Date.now() + 60_000,
    ...overrides,
  };
}

describe('processBatch', () => {
  it('reports only the records that failed (poison, already in the DLQ with its reason); a held job is handed back as a new delayed message', async () => {
    const queue = await setup('batch', [1, 2]);
    await queue.send([{ id: 'bad', body: '{"v":1, not json' }]);
    // Another worker holds job 2.
    await fx.state.acquireLease(
      'batch',
      'acme/api#2',
      { owner: 'other', worker: 'worker-02' },
      Date.now(),
      60_000,
    );
    const records = await queue.receive(10, 0);
    const held = records.find((r) => r.body === body('batch', 2));
    const poison = records.find((r) => r.body.includes('not json'));

    const response = await processBatch(records, deps(queue, scriptedAgent({})));

    expect(response.batchItemFailures).toEqual([{ itemIdentifier: poison?.messageId }]);
    // The held job's delivery is acknowledged and a new message takes its place, delayed until
    // the holder's lease would end: waiting on a live holder spends none of its receives.
    expect(held).toBeDefined();
    for (const record of records) if (record !== poison) await queue.delete(record);
    const copies = queue.pendingBodies().filter((b) => JSON.parse(b).issue.number === 2);
    expect(copies).toHaveLength(1);
    expect(JSON.parse(copies[0] as string)).toMatchObject({ runId: 'batch', issue: { number: 2 } });
    expect(await queue.receive(10, 0)).toEqual([]);
    const jobs = await fx.state.listJobs('batch');
    expect(jobs.find((j) => j.jobKey === 'acme/api#1')).toMatchObject({ status: 'DONE', costMicros: 1000 });
    expect(jobs.find((j) => j.jobKey === 'acme/api#2')).toMatchObject({
      status: 'RUNNING',
      leaseOwner: 'other',
    });
    expect(queue.deadLetters()).toEqual([
      expect.objectContaining({ code: 'INVALID_MESSAGE', reason: expect.stringMatching(/not JSON/) }),
    ]);
  });

  it('fails a job whose agent throws, with its code, without disturbing the others', async () => {
    const queue = await setup('throws', [1, 2, 3]);
    const response = await processBatch(
      await queue.receive(10, 0),
      deps(queue, scriptedAgent({ 2: 'throw' })),
    );
    expect(response.batchItemFailures).toEqual([]);
    const jobs = await fx.state.listJobs('throws');
    expect(jobs.map((j) => [j.jobKey, j.status, j.errorCode])).toEqual([
      ['acme/api#1', 'DONE', undefined],
      ['acme/api#2', 'FAILED', 'AGENT_FAILED'],
      ['acme/api#3', 'DONE', undefined],
    ]);
    expect(queue.deadLetters().map((d) => [JSON.parse(d.body).issue.number, d.code, d.reason])).toEqual([
      [2, 'AGENT_FAILED', 'the agent broke'],
    ]);
    expect((await fx.state.getRun('throws'))?.spentMicros).toBe(3000);
  });

  it('gives a retryable failure back to the queue until its last delivery, then fails it', async () => {
    const queue = await setup('retry', [1]);
    const agent = scriptedAgent({ 1: 'retryable' });
    for (const expected of ['PENDING', 'PENDING', 'FAILED']) {
      const [record] = await queue.receive(1, 0);
      if (!record) throw new Error('expected a delivery');
      const response = await processBatch([record], deps(queue, agent));
      const [job] = await fx.state.listJobs('retry');
      expect(job?.status).toBe(expected);
      expect(response.batchItemFailures).toHaveLength(expected === 'FAILED' ? 0 : 1);
      await queue.changeVisibility(record, 0);
    }
    expect(queue.deadLetters()[0]).toMatchObject({ code: 'STATE_UNAVAILABLE' });
  });

  it('backs a retryable failure off for 30 s doubling (jittered), not the whole visibility timeout', async () => {
    const queue = await setup('backoff', [1]);
    const hidden: number[] = [];
    const spy: LocalQueue = Object.assign(Object.create(queue), {
      changeVisibility: async (record: Parameters<LocalQueue['changeVisibility']>[0], seconds: number) => {
        hidden.push(seconds);
        return queue.changeVisibility(record, seconds);
      },
    });
    const agent = scriptedAgent({ 1: 'retryable' });
    for (let delivery = 1; delivery <= 2; delivery++) {
      const [record] = await queue.receive(1, 0);
      if (!record) throw new Error('expected a delivery');
      await processBatch([record], deps(spy, agent));
      expect(queue.depth()).toMatchObject({ visible: 0, inFlight: 1 });
      await queue.changeVisibility(record, 0);
    }
    expect(hidden[0]).toBeGreaterThanOrEqual(15);
    expect(hidden[0]).toBeLessThanOrEqual(30);
    expect(hidden[1]).toBeGreaterThanOrEqual(30);
    expect(hidden[1]).toBeLessThanOrEqual(60);
  });

  it('reports what every attempt spent, the retried one too, so metrics count every dollar', async () => {
    const queue = await setup('spent', [1]);
    const events: WorkerEvent[] = [];
    let calls = 0;
    const flaky: Agent = {
      name: 'flaky',
      async run(_job, _workspace, context) {
        const reservation = await context.spend.reserve(700);
        await reservation.settle(700);
        if (++calls === 1) throw new FanoutError('SERVICE_UNAVAILABLE', 'busy', { retryable: true });
        return { summary: 'ok' };
      },
    };
    for (let delivery = 1; delivery <= 2; delivery++) {
      const [record] = await queue.receive(1, 0);
      if (!record) throw new Error('expected a delivery');
      await processBatch([record], deps(queue, flaky, { onEvent: (e) => events.push(e) }));
      await queue.changeVisibility(record, 0);
    }
    const spent = events.filter((e) => e.type === 'spent');
    expect(spent.map((e) => e.costMicros)).toEqual([700, 700]);
    const metrics: Record<string, number> = {};
    const record = recordMetrics({
      addMetric: (name: string, _unit: unknown, value: number) => {
        metrics[name] = (metrics[name] ?? 0) + value;
      },
    } as never);
    for (const event of events) record(event);
    expect(metrics.JobCostUsd).toBeCloseTo(0.0014, 10);
    expect((await fx.state.getRun('spent'))?.spentMicros).toBe(1400);
    // The job's cost is every attempt's, and the job costs add up to what the ledger spent.
    expect((await fx.state.getJob('spent', 'acme/api#1'))?.costMicros).toBe(1400);
  });

  it('waits for other jobs to settle rather than skip a job the budget will cover once they do', async () => {
    // Budget 2500; each job reserves its worst case of 1000 and spends 500.
    const settleLow: Agent = {
      name: 'settle-low',
      async run(_job, _workspace, context) {
        const reservation = await context.spend.reserve(1000);
        await new Promise((resolve) => setTimeout(resolve, 150));
        await reservation.settle(500);
        return { summary: 'ok' };
      },
    };
    const queue = await setup('wait', [1, 2, 3], 2500);
    const records = await queue.receive(10, 0);
    await Promise.all(records.map((record) => processBatch([record], deps(queue, settleLow))));
    const jobs = await fx.state.listJobs('wait');
    expect(jobs.map((j) => j.status)).toEqual(['DONE', 'DONE', 'DONE']);
    expect(await fx.state.getRun('wait')).toMatchObject({ spentMicros: 1500, reservedMicros: 0 });

    // With 1200, once the first has spent 500 the rest cannot fit even with nothing reserved: SKIPPED.
    const tight = await setup('tight', [1, 2, 3], 1200);
    const tightRecords = await tight.receive(10, 0);
    await Promise.all(tightRecords.map((record) => processBatch([record], deps(tight, settleLow))));
    const outcomes = (await fx.state.listJobs('tight')).map((j) => j.status).sort();
    expect(outcomes).toEqual(['DONE', 'SKIPPED', 'SKIPPED']);
  });

  it("hands a checkpointed job on in its repository's fairness group, as send put it", async () => {
    const queue = await setup('group', [1]);
    const sent: SendEntry[] = [];
    const spy: LocalQueue = Object.assign(Object.create(queue), {
      send: async (entries: readonly SendEntry[]) => {
        sent.push(...entries);
        return queue.send(entries);
      },
    });
    const checkpoints: Agent = {
      name: 'checkpoints',
      run: async () => ({ summary: 'saved', continue: true }),
    };
    const [record] = await queue.receive(1, 0);
    if (!record) throw new Error('expected a delivery');
    await processBatch([record], deps(spy, checkpoints));
    expect(sent).toEqual([expect.objectContaining({ id: 'acme/api#1', group: 'acme/api' })]);
  });

  it('fails a job whose invocations are all asked to checkpoint before it can work, after 3 in a row', async () => {
    const queue = await setup('stall', [1]);
    const neverWorks: Agent = {
      name: 'stalls',
      run: async () => ({ summary: 'checkpointed', continue: true }),
    };
    for (let invocation = 1; invocation <= 3; invocation++) {
      const [record] = await queue.receive(1, 0);
      if (!record) throw new Error(`expected invocation ${invocation}`);
      await processBatch([record], deps(queue, neverWorks));
      await queue.delete(record);
    }
    expect(await fx.state.getJob('stall', 'acme/api#1')).toMatchObject({
      status: 'FAILED',
      errorCode: 'NO_PROGRESS',
      errorMessage: expect.stringMatching(/asked to checkpoint 3 times in a row before it could work/),
    });
    expect(queue.isEmpty()).toBe(true);
  });

  it('skips a job the budget cannot cover and says so', async () => {
    const queue = await setup('skip', [1, 2, 3], 2500);
    await processBatch(await queue.receive(10, 0), deps(queue, scriptedAgent({})));
    const jobs = await fx.state.listJobs('skip');
    expect(jobs.map((j) => j.status)).toEqual(['DONE', 'DONE', 'SKIPPED']);
    expect(jobs[2]).toMatchObject({ errorCode: 'BUDGET_EXHAUSTED', costMicros: 0 });
    expect(await fx.state.getRun('skip')).toMatchObject({ spentMicros: 2000, reservedMicros: 0 });
  });

  it("charges a crashed attempt's open reservation once, as abandoned, when the job is taken over", async () => {
    const queue = await setup('crashed', [1]);
    const t0 = Date.now() - 60_000;
    const crashed = await fx.state.acquireLease(
      'crashed',
      'acme/api#1',
      { owner: 'dead', worker: 'worker-02' },
      t0,
      1000,
    );
    if (crashed.kind !== 'acquired') throw new Error('expected the lease');
    const dead = { jobKey: 'acme/api#1', owner: 'dead' };
    await fx.state.reserve('crashed', reservationId(dead, 1, 5000, t0 + 10), 5000);
    // A delivery racing this one has just reserved: that reservation is not abandoned.
    const racing = reservationId({ jobKey: 'acme/api#1', owner: 'racing' }, 1, 700, Date.now());
    await fx.state.reserve('crashed', racing, 700);

    await processBatch(await queue.receive(1, 0), deps(queue, scriptedAgent({}, 1000)));

    expect((await fx.state.openReservations('crashed')).map((entry) => entry.id)).toEqual([racing]);
    const [job] = await fx.state.listJobs('crashed');
    expect(job).toMatchObject({ status: 'DONE', attempts: 2, costMicros: 1000 });
    expect(await fx.state.getRun('crashed')).toMatchObject({
      spentMicros: 1000,
      abandonedMicros: 5000,
      reservedMicros: 700,
      openReservations: 1,
      availableMicros: 1_000_000 - 6700,
    });
  });

  it('acknowledges a delivery of a finished job without running it again', async () => {
    const queue = await setup('twice', [1]);
    await queue.send([{ id: 'dup', body: body('twice', 1) }]);
    let runs = 0;
    const agent: Agent = { name: 'count', run: async () => ({ summary: String(++runs) }) };
    const response = await processBatch(await queue.receive(10, 0), deps(queue, agent));
    expect(response.batchItemFailures).toEqual([]);
    expect(runs).toBe(1);
  });
});
