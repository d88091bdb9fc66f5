/**
 * The sandbox on AWS behind the IAM gate: a stack deployed with -c sandbox=lambda, its
 * bundled worker and its bundled sandbox function, the template's policies the only
 * permissions. The worker invokes the function through the gate; the function reaches
 * the job's files only through the presigned URLs, which the gate authorizes as their
 * signer (the worker) and which name objects under the job's prefix only.
 */
import { DeleteMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxInvocation } from '../../shared/contracts/sandbox-protocol.js';
import { demoLlmAgent, type GatedAws, startGatedAws } from '../support/gated-aws.js';
import { ACCOUNT } from '../support/template-policies.js';

const RUN = 'sandbox-run';
let aws: GatedAws;

beforeAll(async () => {
  aws = await startGatedAws({ context: { agentModel: 'scripted:demo', sandbox: 'lambda' } });
  await aws.dynamo.state.createRun({ runId: RUN, budgetMicros: 10_000_000, createdAt: Date.now() });
}, 180_000);
afterAll(async () => {
  await aws?.close();
});

describe('the sandbox function behind the IAM gate', () => {
  it("runs a sandboxed job's commands there: verified, nothing denied, the worker invoking that function only", async () => {
    await aws.send(RUN, [
      {
        issue: { repo: 'mock/backlog', number: 1, title: 'Fix the greeting', body: 'Helo', labels: [] },
        agent: demoLlmAgent({ sandbox: 'auto' }),
      },
    ]);
    const messages = await aws.receive(1);
    const { response } = await aws.invoke(messages, { remainingMs: 120_000 });
    expect(response.batchItemFailures).toEqual([]);
    await aws.sqs.client.send(
      new DeleteMessageCommand({ QueueUrl: aws.sqs.queueUrl, ReceiptHandle: messages[0]?.ReceiptHandle }),
    );

    const job = await aws.dynamo.state.getJob(RUN, 'mock/backlog#1');
    expect(job).toMatchObject({ status: 'DONE', verdict: 'verified' });
    expect(job?.verification).toMatch(/^verified: npm test: exit 1 before, exit 0 after; approved/);
    expect(aws.world.denied()).toEqual([]);

    // The demo's commands: the baseline, two of the agent's, the tests after.
    expect(aws.sandboxInvocations).toHaveLength(4);
    const invokes = aws.world.decisions.filter((d) => d.action.startsWith('lambda:'));
    expect(invokes).toHaveLength(4);
    for (const d of invokes) {
      expect(d).toMatchObject({
        caller: aws.worker.arn,
        action: 'lambda:InvokeFunction',
        resource: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:fanout-sandbox`,
        allowed: true,
      });
    }
    // Every object the function read or wrote is under this job's prefix.
    const prefix = `arn:aws:s3:::fanout-workspaces/runs/${RUN}/jobs/mock/backlog/1/sandbox/`;
    const sandboxObjects = aws.world.decisions.filter((d) => d.resource.includes('/sandbox/'));
    expect(sandboxObjects.length).toBeGreaterThanOrEqual(4 * 3);
    for (const d of sandboxObjects) expect(d.resource.startsWith(prefix)).toBe(true);
    for (const { payload } of aws.sandboxInvocations) {
      for (const url of Object.values((payload as SandboxInvocation).urls)) {
        expect(Number(new URL(url).searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
      }
    }
    // The function's time is in the job's cost: the stack's price of its GB-seconds.
    const modelCalls = 6; // five implementer turns, one review
    expect(job?.costMicros ?? 0).toBeGreaterThan(modelCalls * 1000);
  });

  it('gives the worker lambda:InvokeFunction on the sandbox and uses it; the function itself makes no AWS call', () => {
    const granted = aws.worker.policies
      .flatMap((p) => p.Statement)
      .filter((s) => [s.Action].flat().some((a) => String(a).startsWith('lambda:')));
    expect(granted.map((s) => s.Action)).toEqual(['lambda:InvokeFunction']);
    expect(aws.world.actionsOf(aws.worker.arn).has('lambda:InvokeFunction')).toBe(true);
    // Every decision the gate made was for the worker: the sandbox's role was never used.
    expect(new Set(aws.world.decisions.map((d) => d.caller))).toEqual(new Set([aws.worker.arn]));
  });
});
