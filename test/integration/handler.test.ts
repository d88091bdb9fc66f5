import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { emptyDirectory } from '../../shared/adapters/scratch-dir.js';
import { processBatch } from '../../shared/domain/worker.js';
import type { Agent } from '../../shared/ports/agent.js';
import { harness, issues, messageFor, silent } from '../scenarios/harness.js';
import {
  lambdaEnv,
  lambdaEvent,
  receiveAll,
  type S3Fixture,
  type SqsFixture,
  startS3,
  startSqs,
} from '../support/aws-engines.js';
import { type StateFixture, startState } from '../support/engines.js';

const ROOT = join(import.meta.dirname, '../..');

describe('the Lambda handler under a timeout', () => {
  let dynamo: StateFixture;
  let s3: S3Fixture;
  let sqs: SqsFixture;
  beforeAll(async () => {
    [dynamo, s3, sqs] = await Promise.all([
      startState('h-table'),
      startS3('h-bucket'),
      startSqs({ visibilitySeconds: 1, maxReceiveCount: 10 }),
    ]);
    await dynamo.state.createRun({ runId: 'h', budgetMicros: 1_000_000, createdAt: Date.now() });
  });
  afterAll(() => Promise.all([dynamo.close(), s3.close(), sqs.close()]));

  const receiveEvent = async (): Promise<SQSEvent> => lambdaEvent(await receiveAll(sqs, 3));

  /** The handler in a process of its own, as a Lambda execution environment. */
  const invoke = (event: SQSEvent): { child: ChildProcess; response: Promise<string> } => {
    const runner = join(tmpdir(), `handler-${Date.now()}-${Math.random()}.mjs`);
    writeFileSync(
      runner,
      `const { handler } = await import(${JSON.stringify(join(ROOT, 'functions/worker/handler.ts'))});
       const r = await handler(JSON.parse(process.argv[2]), { awsRequestId: 'req-' + process.pid, getRemainingTimeInMillis: () => 60000 });
       console.log('RESPONSE ' + JSON.stringify(r));`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', runner, JSON.stringify(event)], {
      cwd: ROOT,
      env: lambdaEnv(
        { dynamoEndpoint: dynamo.engine.endpoint, tableName: 'h-table', s3, sqs },
        {
          FANOUT_MAX_RECEIVE_COUNT: '10',
          FANOUT_WORKERS: '2',
          FANOUT_LEASE_SECONDS: '5',
          FANOUT_SCRATCH_DIR: join(tmpdir(), `scratch-${process.pid}`),
          FANOUT_AGENT: JSON.stringify({
            kind: 'simulate',
            durationMs: { min: 2000, max: 2000 },
            failRate: 0,
            costMicros: { min: 100, max: 100 },
            seed: 1,
          }),
        },
      ),
    });
    let stdout = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    const response = new Promise<string>((resolve) => child.on('exit', () => resolve(stdout)));
    return { child, response };
  };

  it('a batch cut off by its timeout does not run the jobs it finished again', async () => {
    const messages = [1, 2, 3].map((n) => ({
      Id: String(n),
      MessageBody: messageFor('h', issues(3)[n - 1] as never),
    }));
    await sqs.client.send(new SendMessageBatchCommand({ QueueUrl: sqs.queueUrl, Entries: messages }));
    const first = await receiveEvent();
    expect(first.Records).toHaveLength(3);

    const { child, response } = invoke(first);
    // The batch runs in the event's order. The function "times out" while its third job
    // runs (2 s of work each, so the moment is wide): the process ends with no response.
    const keys = first.Records.map((r) => `acme/api#${JSON.parse(r.body).issue.number}`);
    for (;;) {
      const jobs = await Promise.all(keys.map((key) => dynamo.state.getJob('h', key)));
      if (jobs[0]?.status === 'DONE' && jobs[1]?.status === 'DONE' && jobs[2]?.status === 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGKILL');
    expect(await response).not.toContain('RESPONSE');

    // The whole batch comes back (pitfall 4). The finished jobs are acknowledged, the cut-off one deferred.
    const second = await receiveEvent();
    expect(second.Records).toHaveLength(3);
    const again = invoke(second);
    const out = await again.response;
    const result = JSON.parse(
      out
        .split('\n')
        .find((l) => l.startsWith('RESPONSE '))
        ?.slice(9) ?? '{}',
    );
    const jobs = await Promise.all(keys.map((key) => dynamo.state.getJob('h', key)));
    expect(jobs.map((j) => [j?.status, j?.attempts])).toEqual([
      ['DONE', 1],
      ['DONE', 1],
      ['RUNNING', 1],
    ]);
    // The cut-off job is still leased by the dead invocation: deferred, not run twice at once.
    // Its delivery is acknowledged and handed back as a new message, delayed until the lease
    // would end (5 s here), so the wait spends none of its receives.
    const cut = second.Records.find(
      (r) => JSON.parse(r.body).issue.number === Number(keys[2]?.split('#')[1]),
    );
    expect(result.batchItemFailures).toEqual([]);
    expect((await dynamo.state.getRun('h'))?.spentMicros).toBe(200);
    // As the event source does: delete what the response did not report failed.
    for (const r of second.Records)
      await sqs.client.send(
        new DeleteMessageCommand({ QueueUrl: sqs.queueUrl, ReceiptHandle: r.receiptHandle }),
      );
    const handedBack = await receiveAll(sqs, 1);
    expect(handedBack).toHaveLength(1);
    expect(JSON.parse(handedBack[0]?.Body ?? '{}').issue.number).toBe(
      JSON.parse(cut?.body ?? '{}').issue.number,
    );
    expect(handedBack[0]?.Attributes?.ApproximateReceiveCount).toBe('1');
  }, 60_000);
});

describe('Lambda reuses /tmp (pitfall 8)', () => {
  it('is empty at the start of each job', async () => {
    const h = await harness({});
    try {
      await h.send(issues(3));
      const scratch = await mkdtemp(join(tmpdir(), 'fanout-tmp-'));
      writeFileSync(join(scratch, 'left-by-an-earlier-invocation'), 'x');
      const seen: string[][] = [];
      const agent: Agent = {
        name: 'tmp-user',
        async run(job) {
          seen.push(readdirSync(scratch));
          writeFileSync(join(scratch, `job-${job.issue.number}.tmp`), 'scratch');
          return { summary: 'ok' };
        },
      };
      const records = await h.queue.receive(10, 0);
      await processBatch(records, {
        state: h.state,
        queue: h.queue,
        workspaces: new FolderWorkspaceStore(await mkdtemp(join(tmpdir(), 'ws-'))),
        agent,
        logger: silent,
        clock: Date.now,
        workerId: 'worker-01',
        owner: 'o',
        leaseMs: 10_000,
        heartbeatMs: 3000,
        maxReceiveCount: 3,
        deadline: Date.now() + 60_000,
        beforeJob: () => emptyDirectory(scratch),
      });
      expect(seen).toEqual([[], [], []]);
      expect(existsSync(scratch)).toBe(true);
    } finally {
      await h.close();
    }
  });
});
