/**
 * Priorities on SQS: the event source delivers in the queue's order, so a worker runs the
 * jobs waiting in the higher lanes before the one it was handed (README, "Priorities").
 * Against local-aws-sqs and dynalite, with the worker core the Lambda handler runs.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { SqsJobQueue } from '../../shared/adapters/sqs-queue.js';
import { type Issue, jobKey, type Priority } from '../../shared/domain/job.js';
import { sendIssues } from '../../shared/domain/send.js';
import { processBatch, type WorkerDeps } from '../../shared/domain/worker.js';
import type { Agent } from '../../shared/ports/agent.js';
import type { QueueRecord } from '../../shared/ports/queue.js';
import { issues } from '../scenarios/harness.js';
import { type SqsFixture, startSqs } from '../support/aws-engines.js';
import { type StateFixture, startState } from '../support/engines.js';

let sqs: SqsFixture;
let fx: StateFixture;
beforeAll(async () => {
  [sqs, fx] = await Promise.all([startSqs({ visibilitySeconds: 30, maxReceiveCount: 3 }), startState()]);
});
afterAll(async () => {
  await sqs?.close();
  await fx?.close();
});

const silent = { info: () => {}, warn: () => {}, error: () => {} };
/** Every message now in a queue (short polls until one comes back empty twice). */
async function drainQueue(url: string): Promise<Message[]> {
  const found: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const { Messages = [] } = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    found.push(...Messages);
    empty = Messages.length === 0 ? empty + 1 : 0;
  }
  return found;
}

describe('priority lanes on SQS', () => {
  it('a worker handed a low job first runs every waiting high job, then every normal one; nothing lost, doubled or dead-lettered', async () => {
    const runId = 'lanes';
    const queue = new SqsJobQueue({
      client: sqs.client,
      queueUrl: sqs.queueUrl,
      deadLetterQueueUrl: sqs.deadLetterQueueUrl,
      laneUrls: sqs.laneUrls,
    });
    const workspaces = new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'fanout-lanes-')));
    const send = (list: Issue[], priority: Priority) =>
      sendIssues(
        list,
        { runId, budgetMicros: 1_000_000, priority },
        { state: fx.state, queue, workspaces, clock: Date.now },
      );
    // The low backlog is sent first, so the event source hands the worker a low job first.
    await send(issues(4, 'acme/chores'), 'low');
    await send(issues(4, 'acme/api'), 'normal');
    await send(issues(3, 'acme/api', 101), 'high');

    const started: string[] = [];
    const agent: Agent = {
      name: 'order',
      async run(job) {
        started.push(jobKey(job.issue));
        return { summary: 'ok' };
      },
    };
    const deps: WorkerDeps = {
      state: fx.state,
      queue,
      workspaces,
      agent,
      logger: silent,
      clock: Date.now,
      workerId: 'worker-01',
      owner: 'invocation-1',
      leaseMs: 10_000,
      heartbeatMs: 3_000,
      maxReceiveCount: 3,
      deadline: Date.now() + 900_000,
    };
    // One worker, fed as the event source feeds it: a batch of one from the job queue.
    const delivered: QueueRecord[] = [];
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const records = await queue.receive(1, 0);
      if (records.length === 0) {
        if ((await fx.state.listJobs(runId)).every((j) => j.status === 'DONE')) break;
        continue;
      }
      delivered.push(...records);
      const { batchItemFailures } = await processBatch(records, deps);
      expect(batchItemFailures).toEqual([]);
      for (const record of records) await queue.delete(record);
    }

    const priorityOf = (key: string) =>
      key.startsWith('acme/chores') ? 'low' : Number(key.split('#')[1]) > 100 ? 'high' : 'normal';
    expect(started.map(priorityOf)).toEqual([
      ...Array(3).fill('high'),
      ...Array(4).fill('normal'),
      ...Array(4).fill('low'),
    ]);
    // Each job ran once and is DONE.
    expect(new Set(started).size).toBe(11);
    const jobs = await fx.state.listJobs(runId);
    expect(jobs.map((j) => [j.status, j.attempts])).toEqual(Array(11).fill(['DONE', 1]));
    // Every job's own message was delivered once (a copy run ahead made it an acknowledged
    // duplicate), so the scheduling spent no message a receive; the lanes and the DLQ are empty.
    expect(delivered).toHaveLength(11);
    expect(delivered.every((r) => r.receiveCount === 1)).toBe(true);
    expect(await drainQueue(sqs.laneUrls.high)).toEqual([]);
    expect(await drainQueue(sqs.laneUrls.normal)).toEqual([]);
    expect(await drainQueue(sqs.deadLetterQueueUrl)).toEqual([]);
  }, 60_000);
});
