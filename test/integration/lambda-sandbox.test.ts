/**
 * The sandbox on AWS, on the embedded engines: the worker's LambdaSandbox stores a room's
 * files in s3rver under the job's prefix and invokes the sandbox function (its Invoke call
 * mocked at the SDK seam, answered by the function's own code in this process), which
 * reaches the files only through the presigned URLs it is handed.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LambdaSandbox } from '../../shared/adapters/lambda-sandbox.js';
import { runSandboxInvocation } from '../../shared/adapters/sandbox-function.js';
import { type ScriptedTurn, scriptedModel } from '../../shared/adapters/scripted-model.js';
import { llmAgent } from '../../shared/agents/llm.js';
import { BUNDLED_PRICES, priceOf } from '../../shared/agents/pricing.js';
import type { SandboxInvocation } from '../../shared/contracts/sandbox-protocol.js';
import { harness } from '../scenarios/harness.js';
import { type S3Fixture, startS3 } from '../support/aws-engines.js';

const price = priceOf(BUNDLED_PRICES, 'scripted:demo');
const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);
const tool = (toolUseId: string, name: string, input: Record<string, unknown>): ScriptedTurn => ({
  content: [{ toolUse: { toolUseId, name, input } }],
  usage: { inputTokens: 1000, outputTokens: 100 },
});

let s3: S3Fixture;
// The SDK's default checksum behaviour, as on AWS (the engines' setup turns it off, and the
// SDK reads the setting when a request is made): a checksum in a signed URL would show.
const checksums = process.env.AWS_REQUEST_CHECKSUM_CALCULATION;
beforeAll(async () => {
  s3 = await startS3();
  delete process.env.AWS_REQUEST_CHECKSUM_CALCULATION;
});
afterAll(async () => {
  if (checksums !== undefined) process.env.AWS_REQUEST_CHECKSUM_CALCULATION = checksums;
  await s3.close();
});

/** The worker's sandbox against s3rver, and the function's code behind a mocked Invoke. */
function lambdaSandbox(scratch: string) {
  const invocations: SandboxInvocation[] = [];
  const lambda = mockClient(LambdaClient);
  lambda.on(InvokeCommand).callsFake(async (input: { Payload: string }) => {
    const event = JSON.parse(input.Payload) as SandboxInvocation;
    invocations.push(event);
    try {
      const reply = await runSandboxInvocation(event, { scratch });
      return { StatusCode: 200, Payload: Buffer.from(JSON.stringify(reply)) };
    } catch (error) {
      // How Lambda answers a function that threw.
      return {
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: Buffer.from(JSON.stringify({ errorType: 'Error', errorMessage: (error as Error).message })),
      };
    }
  });
  const sandbox = new LambdaSandbox({
    lambda: new LambdaClient({ region: 'us-east-1' }),
    functionName: 'fanout-sandbox',
    s3: {
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    },
    bucket: s3.bucket,
    scratch: join(scratch, '..', 'worker'),
  });
  return { sandbox, invocations, restore: () => lambda.restore() };
}

describe('the sandbox function, driven by the worker through S3', () => {
  it("runs the agent's commands there: the test fails, the fix, it passes; dependencies stay between commands and never reach the diff", async () => {
    const h = await harness({});
    const scratch = join(await mkdtemp(join(tmpdir(), 'fanout-fn-')), 'tmp');
    const { sandbox, invocations, restore } = lambdaSandbox(scratch);
    process.env.AWS_SECRET_ACCESS_KEY_FOR_TEST = 'aws-secret-of-the-function';
    try {
      const ws = h.workspaces.open(`runs/${h.runId}/jobs/acme/api/7/`);
      await ws.write('repo/greet.js', 'module.exports = () => "Helo";\n');
      await ws.write('repo/test.sh', `grep -q '"Hello"' greet.js && echo PASS || { echo FAIL; exit 1; }\n`);
      const issue = {
        repo: 'acme/api',
        number: 7,
        title: 'Fix the greeting',
        body: 'It says Helo.',
        labels: [],
      };
      await h.queue.send([{ id: 'j', body: JSON.stringify({ v: 1, runId: h.runId, issue, sentAt: 0 }) }]);
      const model = scriptedModel(
        'scripted:demo',
        [
          // An install: a dependency folder the next command still finds.
          tool('1', 'run_command', {
            command: 'mkdir -p node_modules/dep && echo dep > node_modules/dep/index.js; env',
          }),
          tool('2', 'run_command', { command: 'cat node_modules/dep/index.js && sh test.sh' }),
          tool('3', 'edit_file', { path: 'greet.js', oldText: '"Helo"', newText: '"Hello"' }),
          tool('4', 'run_command', { command: 'sh test.sh && echo made > gen.txt' }),
          tool('5', 'finish', { summary: 'Fix the greeting' }),
        ],
        [tool('r', 'review', { decision: 'approve', reasons: 'Fixed.' })],
      );
      await h.drain({
        workers: 1,
        agent: llmAgent({ model, price, sandbox, testCommand: 'sh test.sh', sandboxMicrosPerSecond: 1000 }),
      });

      const [job] = await h.state.listJobs(h.runId);
      expect(job).toMatchObject({ status: 'DONE', verdict: 'verified' });
      const result = (call: number) => JSON.stringify(model.calls[call]?.messages.at(-1)?.content);
      // The command's environment holds nothing of the function's or the worker's.
      expect(result(1)).toContain('PATH=');
      expect(result(1)).not.toMatch(/AWS_|aws-secret-of-the-function|GITHUB/);
      expect(result(2)).toMatch(/exit code 1, \d+ ms\\ndep\\nFAIL/);
      expect(result(4)).toMatch(/exit code 0.*files it changed: gen.txt/);
      expect(text(await ws.read('agent/changed-files.txt'))).toBe('gen.txt\ngreet.js');
      expect(text(await ws.read('agent/diff.patch'))).not.toContain('node_modules');

      // Baseline, three commands, the tests after: five invocations of one room.
      expect(invocations).toHaveLength(5);
      const jobPrefix = `runs/${h.runId}/jobs/acme/api/7/sandbox/`;
      for (const [n, event] of invocations.entries()) {
        expect(Object.keys(event.urls).sort()).toEqual(
          n === 0 ? ['files', 'result', 'stateOut'] : ['files', 'result', 'stateIn', 'stateOut'],
        );
        for (const url of Object.values(event.urls)) {
          const parsed = new URL(url);
          // Each URL is for one object under this job's prefix, for minutes.
          expect(decodeURIComponent(parsed.pathname)).toMatch(
            new RegExp(`^/${s3.bucket}/${jobPrefix}[0-9a-f-]+/`),
          );
          expect(Number(parsed.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
          // AWS rule: a presigned PUT with a checksum of the empty body is refused (BadDigest).
          expect(url).not.toMatch(/x-amz-checksum|x-amz-sdk-checksum/i);
        }
      }
      // The sandbox's time is in the ledger: each invocation's billed time at 1,000 micro-USD a second.
      expect(job?.costMicros ?? 0).toBeGreaterThan(6 * 4500);
      expect(await h.state.getRun(h.runId)).toMatchObject({
        reservedMicros: 0,
        spentMicros: job?.costMicros,
      });
      // Nothing of the job is left in the function's scratch folder.
      expect(await readdir(scratch)).toEqual([]);
    } finally {
      delete process.env.AWS_SECRET_ACCESS_KEY_FOR_TEST;
      restore();
      await h.close();
    }
  });

  it("leaves nothing of one job's command for the next job's in a reused execution environment", async () => {
    const scratch = join(await mkdtemp(join(tmpdir(), 'fanout-fn-')), 'tmp');
    const { sandbox, restore } = lambdaSandbox(scratch);
    try {
      const a = await sandbox.open({ jobPrefix: 'runs/r/jobs/acme/api/1/' });
      const wrote = await a.run({
        command: `echo secret-of-a > ${scratch}/leak.txt && echo a > mine-a.txt && pwd`,
      });
      expect(wrote.exitCode).toBe(0);
      const b = await sandbox.open({ jobPrefix: 'runs/r/jobs/acme/api/2/' });
      const looked = await b.run({
        command: `cat ${scratch}/leak.txt; find ${scratch} -name 'mine-a.txt'; ls ${wrote.output.trim()}; echo done`,
      });
      expect(looked.output).toContain('done');
      expect(looked.output).toMatch(/leak.txt: No such file/);
      expect(looked.output).not.toContain('secret-of-a');
      expect(looked.output).not.toContain('mine-a.txt');
      expect(looked.output).toMatch(/No such file/);
      await a.dispose();
      await b.dispose();
    } finally {
      restore();
    }
  });

  it('fails the command with SANDBOX_FAILED, saying why, when the function fails', async () => {
    const scratch = join(await mkdtemp(join(tmpdir(), 'fanout-fn-')), 'tmp');
    const { sandbox, restore } = lambdaSandbox(scratch);
    try {
      const room = await sandbox.open({ jobPrefix: 'runs/r/jobs/acme/api/3/' });
      await expect(room.run({ command: 'true', timeLimitMs: 10 * 60_000 + 1 })).rejects.toMatchObject({
        code: 'SANDBOX_FAILED',
        message: expect.stringMatching(/the sandbox function failed: not a sandbox invocation/),
      });
      await expect(runSandboxInvocation({ v: 1, command: 'id' }, { scratch })).rejects.toMatchObject({
        code: 'INVALID_INPUT',
      });
    } finally {
      restore();
    }
  });
});
