import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { redriveCommand } from '../../cli/redrive-command.js';
import { reportCommand } from '../../cli/report-command.js';
import { SqsJobQueue, SqsQueueAdmin } from '../../shared/adapters/sqs-queue.js';
import { redrive } from '../../shared/domain/redrive.js';
import type { StatePort } from '../../shared/ports/state.js';
import { startSqs } from '../support/aws-engines.js';
import { startState } from '../support/engines.js';

const ROOT = join(import.meta.dirname, '../..');
const fanout = (...args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'cli/fanout.ts', ...args], {
    cwd: ROOT,
    timeout: 60_000,
  });

describe('fanout redrive', () => {
  it('locally: failed jobs go back on the queue and run again; poison stays', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fanout-redrive-'));
    const first = await fanout(
      'run',
      '--state-dir',
      stateDir,
      '--mock-issues',
      '12',
      '--fail-rate',
      '0.3',
      '--seed',
      '5',
      '--duration',
      '20ms',
    );
    const failed = Number(/failed (\d+)/.exec(first.stdout)?.[1]);
    expect(failed).toBeGreaterThan(0);

    const printed: string[] = [];
    expect(await redriveCommand(['--state-dir', stateDir], { out: (t) => printed.push(t) })).toBe(0);
    expect(printed[0]).toBe(
      `Redrove ${failed} job(s) from the dead-letter queue of the local state in ${stateDir}.`,
    );

    // The same seed would fail them again: this time the agent does not fail.
    const second = await fanout(
      'run',
      '--state-dir',
      stateDir,
      '--fail-rate',
      '0',
      '--seed',
      '5',
      '--duration',
      '20ms',
    );
    expect(second.stdout).toMatch(/done 12 {2}failed 0/);
    printed.length = 0;
    await reportCommand(['--state-dir', stateDir, '--json'], { out: (t) => printed.push(t) });
    const report = JSON.parse(printed[0] as string);
    expect(report.totals).toMatchObject({ DONE: 12, FAILED: 0 });
    expect(report.jobs.filter((j: { attempts: number }) => j.attempts === 2)).toHaveLength(failed);
  });

  it('on SQS: moves job messages from the DLQ to the queue and reopens their jobs; leaves poison with a reason', async () => {
    const [sqs, dynamo] = await Promise.all([startSqs(), startState('redrive-table')]);
    try {
      const state: StatePort = dynamo.state;
      await state.createRun({ runId: 'r', budgetMicros: 1000, createdAt: 0 });
      await state.registerJob({ runId: 'r', jobKey: 'acme/api#1', title: 't', registeredAt: 0 });
      const lease = await state.acquireLease(
        'r',
        'acme/api#1',
        { owner: 'o', worker: 'w' },
        Date.now(),
        10_000,
      );
      if (lease.kind !== 'acquired') throw new Error('lease');
      await state.finishJob(
        { runId: 'r', jobKey: 'acme/api#1', owner: 'o', fence: lease.fence },
        {
          status: 'FAILED',
          worker: 'w',
          durationMs: 1,
          costMicros: 0,
          errorCode: 'AGENT_FAILED',
          errorMessage: 'x',
        },
        Date.now(),
      );
      const job = JSON.stringify({
        v: 1,
        runId: 'r',
        issue: { repo: 'acme/api', number: 1, title: 't' },
        sentAt: 1,
      });
      // One dead-lettered by a worker (with its reason), one moved by SQS itself (without).
      await sqs.client.send(
        new SendMessageCommand({
          QueueUrl: sqs.deadLetterQueueUrl,
          MessageBody: job,
          MessageAttributes: {
            'fanout.errorCode': { DataType: 'String', StringValue: 'AGENT_FAILED' },
            'fanout.reason': { DataType: 'String', StringValue: 'x' },
          },
        }),
      );
      await sqs.client.send(
        new SendMessageCommand({ QueueUrl: sqs.deadLetterQueueUrl, MessageBody: 'garbage' }),
      );

      const queues = {
        client: sqs.client,
        queueUrl: sqs.queueUrl,
        deadLetterQueueUrl: sqs.deadLetterQueueUrl,
      };
      const admin = new SqsQueueAdmin(new SqsJobQueue(queues), queues);
      expect(await admin.deadLetters()).toEqual([
        expect.objectContaining({ body: job, code: 'AGENT_FAILED', reason: 'x' }),
        expect.objectContaining({ body: 'garbage', code: 'MAX_RECEIVES' }),
      ]);
      const summary = await redrive(admin, state);
      expect(summary.redriven).toEqual(['acme/api#1']);
      expect(summary.left).toEqual([
        expect.objectContaining({ reason: expect.stringMatching(/not a job message/) }),
      ]);
      expect(await state.getJob('r', 'acme/api#1')).toMatchObject({ status: 'PENDING' });
      const queue = new SqsJobQueue({
        client: sqs.client,
        queueUrl: sqs.queueUrl,
        deadLetterQueueUrl: sqs.deadLetterQueueUrl,
      });
      // Back in its repository's fairness group, as every send puts it (SQS fair queues).
      const back = await sqs.client.send(
        new ReceiveMessageCommand({
          QueueUrl: sqs.queueUrl,
          WaitTimeSeconds: 1,
          VisibilityTimeout: 0,
          AttributeNames: ['All'],
        }),
      );
      expect(back.Messages?.map((m) => m.Attributes?.MessageGroupId)).toEqual(['acme/api']);
      expect((await queue.receive(10, 1000)).map((r) => r.body)).toEqual([job]);
      const dlq = await sqs.client.send(
        new ReceiveMessageCommand({ QueueUrl: sqs.deadLetterQueueUrl, WaitTimeSeconds: 0 }),
      );
      // The poison message is still in the DLQ (hidden for a while by the redrive's look).
      expect(dlq.Messages ?? []).toEqual([]);
    } finally {
      await Promise.all([sqs.close(), dynamo.close()]);
    }
  });
});
