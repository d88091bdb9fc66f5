import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { reportCommand } from '../../cli/report-command.js';
import { sendCommand } from '../../cli/send-command.js';
import { statusCommand } from '../../cli/status-command.js';
import type { AwsClients } from '../../cli/targets.js';
import { dynamoState } from '../../shared/adapters/dynamo/index.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { S3WorkspaceStore } from '../../shared/adapters/s3-workspace.js';
import { type S3Fixture, startS3 } from '../support/aws-engines.js';
import { fanoutStack } from '../support/cli.js';
import { type StateFixture, startState } from '../support/engines.js';
import { startFakeGitHub } from '../support/fake-github.js';

const ROOT = join(import.meta.dirname, '../..');

describe('fanout send --stack (SQS calls asserted, state on dynalite, workspaces on s3rver)', () => {
  let dynamo: StateFixture;
  let s3: S3Fixture;
  let cfn: AwsClientStub<CloudFormationClient>;
  let sqs: AwsClientStub<SQSClient>;
  let aws: AwsClients;
  let printed: string[];
  const out = (text: string) => printed.push(text);

  beforeAll(async () => {
    [dynamo, s3] = await Promise.all([startState('stack-table'), startS3('stack-bucket')]);
    cfn = mockClient(CloudFormationClient);
    sqs = mockClient(SQSClient);
    aws = {
      cloudFormation: new CloudFormationClient({ region: 'us-east-1' }),
      sqs: new SQSClient({ region: 'us-east-1' }),
      dynamodb: embeddedDynamoClient(dynamo.engine.endpoint),
      s3: s3.client,
    };
  });
  afterAll(async () => {
    cfn.restore();
    sqs.restore();
    await Promise.all([dynamo.close(), s3.close()]);
  });
  beforeEach(() => {
    printed = [];
    sqs.reset();
    withFacts({});
    sqs.on(SendMessageBatchCommand).callsFake(acceptAll);
  });
  const acceptAll = (input: { Entries: { Id: string }[] }) => ({
    Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}`, MD5OfMessageBody: '' })),
    Failed: [],
  });

  it("sends 23 issues in batches of 10 to the stack's queue, and a second send sends nothing new", async () => {
    expect(
      await sendCommand(['--mock', '23', '--stack', 'Fanout', '--run-id', 'r1', '--budget-usd', '5'], {
        aws,
        out,
      }),
    ).toBe(0);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 3);
    expect(sqs).toHaveReceivedCommandWith(SendMessageBatchCommand, {
      QueueUrl: 'https://sqs.us-east-1.amazonaws.com/1/jobs',
    });
    // Every message carries its repository as its fairness group (SQS fair queues).
    const groups = sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((call) => call.args[0].input.Entries?.map((entry) => entry.MessageGroupId) ?? []);
    expect(groups).toEqual(new Array(23).fill('mock/backlog'));
    expect(printed.join('\n')).toMatch(/Run r1 \(new\): sent 23, 0 already sent/);
    const state = dynamoState({ tableName: 'stack-table', client: aws.dynamodb });
    expect(await state.getRun('r1')).toMatchObject({ jobCount: 23, budgetMicros: 5_000_000 });
    expect((await state.listJobs('r1')).every((j) => j.enqueuedAt !== undefined)).toBe(true);

    printed = [];
    sqs.resetHistory();
    expect(await sendCommand(['--mock', '23', '--stack', 'Fanout', '--run-id', 'r1'], { aws, out })).toBe(0);
    expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
    expect(printed.join('\n')).toMatch(/sent 0, 23 already sent[\s\S]*Nothing new to send/);
  });

  it('reports a failed entry by name, and a second send sends only it', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .callsFakeOnce((input: { Entries: { Id: string }[] }) => ({
        Successful: input.Entries.slice(1).map((e) => ({ Id: e.Id, MessageId: 'x', MD5OfMessageBody: '' })),
        Failed: [
          { Id: input.Entries[0]?.Id, SenderFault: true, Code: 'InvalidParameterValue', Message: 'rejected' },
        ],
      }))
      .callsFake(acceptAll);
    expect(await sendCommand(['--mock', '3', '--stack', 'Fanout', '--run-id', 'r2'], { aws, out })).toBe(1);
    expect(printed.join('\n')).toMatch(
      /sent 2, 0 already sent .* 1 failed[\s\S]*FAILED mock\/backlog#1: InvalidParameterValue: rejected/,
    );
    printed = [];
    // (History is kept: resetting it would replay the once-only failure.)
    expect(await sendCommand(['--mock', '3', '--stack', 'Fanout', '--run-id', 'r2'], { aws, out })).toBe(0);
    expect(sqs).toHaveReceivedCommandTimes(SendMessageBatchCommand, 2);
    expect(sqs.commandCalls(SendMessageBatchCommand)[1]?.args[0].input.Entries).toHaveLength(1);
    expect(printed.join('\n')).toMatch(
      /sent 1, 2 already sent[\s\S]*1 of them had been registered by a send that did not finish/,
    );
  });

  it('keeps a body over the message limit in the workspace and sends a reference', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fanout-send-'));
    const file = join(dir, 'big.jsonl');
    const body = 'long text '.repeat(30_000);
    writeFileSync(file, `${JSON.stringify({ repo: 'acme/api', number: 7, title: 'Huge', body })}\n`);
    expect(await sendCommand(['--file', file, '--stack', 'Fanout', '--run-id', 'r3'], { aws, out })).toBe(0);
    const sent = JSON.parse(
      sqs.commandCalls(SendMessageBatchCommand)[0]?.args[0].input.Entries?.[0]?.MessageBody as string,
    );
    expect(sent).toMatchObject({ bodyRef: 'issue-body.md', issue: { number: 7, body: '' } });
    const stored = await new S3WorkspaceStore({ client: s3.client, bucket: 'stack-bucket' })
      .open('runs/r3/jobs/acme/api/7/')
      .read('issue-body.md');
    expect(Buffer.from(stored as Uint8Array).toString()).toBe(body);
    expect(printed.join('\n')).toMatch(/1 bodies too large for a message are in their workspaces/);
  });

  it('prints what would be sent with --dry-run, and sends nothing', async () => {
    expect(
      await sendCommand(['--mock', '2', '--stack', 'Fanout', '--run-id', 'r4', '--dry-run'], { aws, out }),
    ).toBe(0);
    expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
    expect(printed.join('\n')).toMatch(/would send 2[\s\S]*mock\/backlog#1\n {2}mock\/backlog#2/);
  });

  const withFacts = (facts: Record<string, string>) => {
    cfn.reset();
    cfn.on(DescribeStacksCommand, { StackName: 'Fanout' }).resolves(
      fanoutStack({
        QueueUrl: 'https://sqs.us-east-1.amazonaws.com/1/jobs',
        DeadLetterQueueUrl: 'https://sqs.us-east-1.amazonaws.com/1/jobs-dlq',
        TableName: 'stack-table',
        BucketName: 'stack-bucket',
        ...facts,
      }),
    );
  };

  it("gives a new run the stack's own budget (its BudgetUsd output) when --budget-usd is absent", async () => {
    withFacts({ BudgetUsd: '25' });
    expect(
      await sendCommand(['--mock', '1', '--stack', 'Fanout', '--run-id', 'r-budget'], { aws, out }),
    ).toBe(0);
    const state = dynamoState({ tableName: 'stack-table', client: aws.dynamodb });
    expect((await state.getRun('r-budget'))?.budgetMicros).toBe(25_000_000);
  });

  it("refuses a run whose model the stack's workers may not invoke, and sends nothing", async () => {
    const profile = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
    const sendLlm = (model: string, ...more: string[]) =>
      sendCommand(['--mock', '1', '--stack', 'Fanout', ...more, '--agent', 'llm', '--model', model], {
        aws,
        out,
      });
    withFacts({ AgentModel: profile });
    await expect(sendLlm('anthropic.claude-3-5-haiku-20241022-v1:0')).rejects.toThrow(
      /may invoke us\.anthropic\.claude-sonnet-4-5-20250929-v1:0 only, not anthropic\.claude-3-5-haiku-20241022-v1:0: send with --model us\.anthropic/,
    );
    withFacts({ AgentModel: 'none' });
    await expect(sendLlm(profile)).rejects.toThrow(
      /may invoke no Bedrock model: deploy it with -c agentModel=/,
    );
    expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
    // The model the stack allows goes through.
    withFacts({ AgentModel: profile });
    expect(await sendLlm(profile, '--run-id', 'r-model')).toBe(0);
  });

  it('warns when the backlog could wait longer than SQS keeps a job', async () => {
    withFacts({ WorkerCount: '2', TimeoutSeconds: '900', QueueRetentionDays: '14' });
    sqs.on(GetQueueAttributesCommand).resolves({
      Attributes: { ApproximateNumberOfMessages: '2600', ApproximateNumberOfMessagesNotVisible: '2' },
    });
    expect(
      await sendCommand(['--mock', '100', '--stack', 'Fanout', '--run-id', 'r-long'], { aws, out }),
    ).toBe(0);
    expect(printed.join('\n')).toMatch(
      /Warning: 2702 jobs on 2 workers of 900 s each may take 14\.1 days; SQS deletes a job that waits over 14 days/,
    );
    printed = [];
    sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { ApproximateNumberOfMessages: '0' } });
    await sendCommand(['--mock', '100', '--stack', 'Fanout', '--run-id', 'r-short'], { aws, out });
    expect(printed.join('\n')).not.toMatch(/Warning/);
  });

  it.each([
    [
      'a stack that does not exist',
      () =>
        cfn
          .on(DescribeStacksCommand)
          .rejects(
            Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }),
          ),
      'Nope',
      /stack "Nope" does not exist in this account and region: deploy it/,
    ],
    [
      'a stack without our outputs',
      () =>
        cfn.on(DescribeStacksCommand).resolves({
          Stacks: [
            { StackName: 'Other', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: [] },
          ],
        }),
      'Other',
      /stack "Other" has no QueueUrl, DeadLetterQueueUrl, TableName, BucketName output\(s\): is it a fanout stack/,
    ],
    [
      'no credentials',
      () =>
        cfn.on(DescribeStacksCommand).rejects(
          Object.assign(new Error('Could not load credentials from any providers'), {
            name: 'CredentialsProviderError',
          }),
        ),
      'Fanout',
      /no AWS credentials to read stack "Fanout": run `aws configure`/,
    ],
  ])('explains %s, and sends nothing', async (_what, arrange, stack, message) => {
    cfn.reset();
    arrange();
    await expect(sendCommand(['--mock', '2', '--stack', stack], { aws, out })).rejects.toThrow(message);
    expect(sqs).not.toHaveReceivedCommand(SendMessageBatchCommand);
  });
});

describe('local target, end to end: send from GitHub, run, status, report', () => {
  let stateDir: string;
  let printed: string[];
  const out = (text: string) => printed.push(text);
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'fanout-local-target-'));
  });
  beforeEach(() => {
    printed = [];
  });

  it('refuses a file with a bad line, naming it, and writes nothing', async () => {
    const file = join(stateDir, '..', `bad-${Date.now()}.jsonl`);
    writeFileSync(
      file,
      '{"repo":"acme/api","number":1,"title":"ok"}\n{"repo":"acme/api","title":"no number"}\n',
    );
    const fresh = join(stateDir, 'never-created');
    await expect(sendCommand(['--file', file, '--local', '--state-dir', fresh], { out })).rejects.toThrow(
      /line 2: number/,
    );
    expect(existsSync(fresh)).toBe(false);
  });

  it('sends GitHub issues to the local queue, then fanout run drains them and report shows each', async () => {
    const gh = await startFakeGitHub({
      repos: {
        'acme/api': [
          { number: 12, title: 'Fix the parser', body: 'It breaks', labels: ['agent'] },
          { number: 11, title: 'A pull request', labels: ['agent'], pullRequest: true },
          { number: 10, title: 'Add a flag', labels: ['agent'] },
          { number: 9, title: 'Not for agents', labels: ['human'] },
        ],
      },
    });
    try {
      const args = [
        '--github',
        'acme/api',
        '--label',
        'agent',
        '--local',
        '--state-dir',
        stateDir,
        '--run-id',
        'gh',
      ];
      expect(await sendCommand(args, { out, githubBaseUrl: gh.baseUrl })).toBe(0);
      expect(printed.join('\n')).toMatch(/Run gh \(new\): sent 2, 0 already sent/);
    } finally {
      await gh.close();
    }

    printed = [];
    expect(await statusCommand(['--state-dir', stateDir, '--json'], { out })).toBe(0);
    const before = JSON.parse(printed[0] as string);
    expect(before).toMatchObject({
      runId: 'gh',
      queue: { visible: 2, inFlight: 0 },
      totals: { PENDING: 2, jobs: 2 },
    });

    // The CLI, as a user runs it: `fanout run` with no issues drains the run that was sent.
    const run = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'cli/fanout.ts',
        'run',
        '--state-dir',
        stateDir,
        '--workers',
        '2',
        '--duration',
        '50ms',
      ],
      { cwd: ROOT, timeout: 60_000 },
    );
    expect(run.stdout).toMatch(/done 2 {2}failed 0/);

    printed = [];
    expect(await statusCommand(['--state-dir', stateDir], { out })).toBe(0);
    expect(printed[0]).toMatch(/Run gh: 2 jobs[\s\S]*worker-0[12] +stopped[\s\S]*done 2 {2}failed 0/);

    printed = [];
    expect(await reportCommand(['--state-dir', stateDir, '--csv'], { out })).toBe(0);
    const lines = (printed[0] as string).split('\n');
    expect(lines[0]).toBe(
      'job,title,outcome,error_code,error_message,duration_ms,attempts,cost_usd,worker,workspace',
    );
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 3).join(','))).toEqual([
      'acme/api#10,Add a flag,DONE',
      'acme/api#12,Fix the parser,DONE',
    ]);
    expect(lines[1]).toContain(join(stateDir, 'workspaces/runs/gh/jobs/acme/api/10'));

    printed = [];
    expect(await reportCommand(['--state-dir', stateDir, '--json', '--run-id', 'gh'], { out })).toBe(0);
    expect(JSON.parse(printed[0] as string)).toMatchObject({
      runId: 'gh',
      totals: { DONE: 2, jobs: 2 },
      complete: true,
    });
  });

  it("sends an organisation's labelled issues through GitHub's search, once each when a repository is also named", async () => {
    const gh = await startFakeGitHub({
      repos: {
        'acme/api': [
          { number: 1, title: 'One', labels: ['agent'] },
          { number: 2, title: 'Two', labels: ['agent', 'priority:high'] },
        ],
        'acme/web': [{ number: 7, title: 'Seven', labels: ['agent'] }],
        'acme/site': [{ number: 3, title: 'Three', labels: ['human'] }],
      },
    });
    const dir = await mkdtemp(join(tmpdir(), 'fanout-org-'));
    try {
      const args = ['--github-org', 'acme', '--github', 'acme/api', '--label', 'agent'];
      const target = ['--local', '--state-dir', dir, '--run-id', 'org'];
      expect(await sendCommand([...args, ...target], { out, githubBaseUrl: gh.baseUrl })).toBe(0);
      expect(printed.join('\n')).toMatch(/Run org \(new\): sent 3, 0 already sent/);
      printed = [];
      await expect(
        sendCommand(['--github-org', 'nobody', ...target], { out, githubBaseUrl: gh.baseUrl }),
      ).rejects.toThrow(/organisation nobody was not found on GitHub/);
    } finally {
      await gh.close();
    }
    printed = [];
    expect(await statusCommand(['--state-dir', dir, '--json'], { out })).toBe(0);
    const status = JSON.parse(printed[0] as string);
    expect(status.repositories.map((r: { repo: string; jobs: number }) => [r.repo, r.jobs])).toEqual([
      ['acme/api', 2],
      ['acme/web', 1],
    ]);
    expect(status.priorities[0]).toMatchObject({ priority: 'high', waiting: 1 });
  });

  it('runs two repositories with mixed priorities: the urgent job first, the small repository kept moving, each repository within its budget', async () => {
    const agent = ['agent'];
    const gh = await startFakeGitHub({
      repos: {
        'acme/big': [
          ...Array.from({ length: 6 }, (_, i) => ({ number: i + 1, title: `Big ${i + 1}`, labels: agent })),
          { number: 7, title: 'Urgent', labels: [...agent, 'priority:high'] },
        ],
        'acme/small': [
          { number: 1, title: 'Small 1', labels: agent },
          { number: 2, title: 'Small 2', labels: agent },
          { number: 3, title: 'Some day', labels: [...agent, 'priority:low'] },
        ],
      },
    });
    const dir = await mkdtemp(join(tmpdir(), 'fanout-mixed-'));
    try {
      const args = ['--github', 'acme/big', '--github', 'acme/small', '--label', 'agent'];
      const target = ['--local', '--state-dir', dir, '--run-id', 'mixed'];
      const budgets = ['--budget-usd', '5', '--repo-budget-usd', '0.25'];
      expect(await sendCommand([...args, ...target, ...budgets], { out, githubBaseUrl: gh.baseUrl })).toBe(0);
      expect(printed.join('\n')).toMatch(/sent 10, [\s\S]*each repository at most \$0\.25/);
    } finally {
      await gh.close();
    }
    printed = [];
    expect(await statusCommand(['--state-dir', dir, '--json'], { out })).toBe(0);
    expect(JSON.parse(printed[0] as string).priorities).toEqual([
      { priority: 'high', jobs: 1, waiting: 1, running: 0, finished: 0 },
      { priority: 'normal', jobs: 8, waiting: 8, running: 0, finished: 0 },
      { priority: 'low', jobs: 1, waiting: 1, running: 0, finished: 0 },
    ]);

    // One worker, so the order in which jobs start is the queue's.
    const args = [
      '--import',
      'tsx',
      'cli/fanout.ts',
      'run',
      '--state-dir',
      dir,
      '--workers',
      '1',
      '--duration',
      '50ms',
    ];
    await promisify(execFile)(process.execPath, args, { cwd: ROOT, timeout: 60_000 });
    printed = [];
    expect(await reportCommand(['--state-dir', dir, '--json', '--run-id', 'mixed'], { out })).toBe(0);
    const report = JSON.parse(printed[0] as string);
    const order = [...report.jobs]
      .sort((a: { startedAt: number }, b: { startedAt: number }) => a.startedAt - b.startedAt)
      .map((j: { jobKey: string }) => j.jobKey);
    expect(order).toHaveLength(10);
    // The urgent job first, the low one last; then the repositories take turns, so the small
    // one's two normal jobs are among the first five, not after the big one's backlog of six.
    expect(order[0]).toBe('acme/big#7');
    expect(order.at(-1)).toBe('acme/small#3');
    expect(order.indexOf('acme/small#1')).toBeLessThan(5);
    expect(order.indexOf('acme/small#2')).toBeLessThan(5);
    // Each repository spends within its budget ($0.25: a job costs $0.02-0.08 and reserves
    // $0.08): the big one's last jobs are SKIPPED, the small one's three all DONE; the report
    // shows each repository's spend.
    const rows = new Map(report.repositories.map((r: { repo: string }) => [r.repo, r]));
    expect(rows.get('acme/small')).toMatchObject({ jobs: 3, done: 3, skipped: 0 });
    expect(rows.get('acme/big')).toMatchObject({ jobs: 7, skipped: expect.any(Number) });
    const big = rows.get('acme/big') as { skipped: number; costUsd: number };
    expect(big.skipped).toBeGreaterThan(0);
    expect(big.costUsd).toBeLessThanOrEqual(0.25);
    const skipped = report.jobs.filter((j: { status: string }) => j.status === 'SKIPPED');
    for (const job of skipped) {
      expect(job).toMatchObject({
        errorCode: 'BUDGET_EXHAUSTED',
        errorMessage: expect.stringMatching(/budget of acme\/big/),
      });
    }
  }, 90_000);

  it('sends several repositories to one run, each job keeping its key, and the report counts each repository', async () => {
    const gh = await startFakeGitHub({
      repos: {
        'acme/api': [
          { number: 7, title: 'Parser', labels: ['agent'] },
          { number: 5, title: 'Flag', labels: ['agent'] },
        ],
        'acme/web': [{ number: 7, title: 'Button', labels: ['agent'] }],
      },
    });
    const dir = await mkdtemp(join(tmpdir(), 'fanout-repos-'));
    try {
      // One repository named, the other listed in a file (with a comment and a blank line).
      const list = join(dir, 'repos.txt');
      writeFileSync(list, '# the team\u2019s repositories\nacme/web\n\nacme/api  # also named below\n');
      const args = ['--github', 'acme/api', '--github-repos', list, '--label', 'agent'];
      const target = ['--local', '--state-dir', dir, '--run-id', 'repos'];
      expect(await sendCommand([...args, ...target], { out, githubBaseUrl: gh.baseUrl })).toBe(0);
      expect(printed.join('\n')).toMatch(/Run repos \(new\): sent 3, 0 already sent/);
      // A list with a line that is not owner/repo is refused, naming the line, before GitHub is asked.
      writeFileSync(list, 'acme/web\nnot a repo\n');
      await expect(sendCommand(['--github-repos', list, ...target], { out })).rejects.toThrow(
        /--github-repos .*repos\.txt: line 2 \("not a repo"\) is not owner\/repo/,
      );
      // A repository that cannot be read stops the send before anything is sent.
      printed = [];
      const missing = [
        '--github',
        'acme/api',
        '--github',
        'acme/gone',
        '--local',
        '--state-dir',
        dir,
        '--run-id',
        'other',
      ];
      await expect(sendCommand(missing, { out, githubBaseUrl: gh.baseUrl })).rejects.toThrow(
        /repository acme\/gone was not found/,
      );
    } finally {
      await gh.close();
    }
    printed = [];
    expect(await reportCommand(['--state-dir', dir, '--json', '--run-id', 'repos'], { out })).toBe(0);
    const report = JSON.parse(printed[0] as string);
    expect(report.jobs.map((j: { jobKey: string }) => j.jobKey).sort()).toEqual([
      'acme/api#5',
      'acme/api#7',
      'acme/web#7',
    ]);
    expect(report.repositories).toEqual([
      { repo: 'acme/api', jobs: 2, done: 0, failed: 0, skipped: 0, waiting: 2, running: 0, costUsd: 0 },
      { repo: 'acme/web', jobs: 1, done: 0, failed: 0, skipped: 0, waiting: 1, running: 0, costUsd: 0 },
    ]);
    printed = [];
    expect(await statusCommand(['--state-dir', dir, '--json'], { out })).toBe(0);
    expect(JSON.parse(printed[0] as string)).toMatchObject({
      runId: 'repos',
      totals: { PENDING: 3, jobs: 3 },
      repositories: [
        { repo: 'acme/api', jobs: 2, waiting: 2 },
        { repo: 'acme/web', jobs: 1, waiting: 1 },
      ],
    });
    printed = [];
    expect(await statusCommand(['--state-dir', dir], { out })).toBe(0);
    expect(printed.join('\n')).toMatch(
      /repository\s+jobs\s+done\s+failed\s+skipped\s+waiting\s+running\s+cost/,
    );
    expect(printed.join('\n')).toMatch(/acme\/web\s+1\s+0\s+0\s+0\s+1/);
  });
});

describe('the agent of a run, chosen at send', () => {
  it('travels in each message: a run sent with --agent llm is worked by the llm agent', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fanout-agent-send-'));
    const printed: string[] = [];
    const args = ['--mock', '2', '--local', '--state-dir', stateDir, '--run-id', 'agents'];
    expect(
      await sendCommand([...args, '--agent', 'llm', '--model', 'scripted:demo'], {
        out: (t) => printed.push(t),
      }),
    ).toBe(0);
    // The workers' own agent is the default simulate agent: the messages say otherwise.
    const run = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'cli/fanout.ts', 'run', '--state-dir', stateDir, '--workers', '1'],
      {
        cwd: ROOT,
        timeout: 60_000,
      },
    );
    expect(run.stdout).toMatch(/done 2 {2}failed 0/);
    const patch = readFileSync(
      join(stateDir, 'workspaces/runs/agents/jobs/mock/backlog/1/agent/diff.patch'),
      'utf8',
    );
    expect(patch).toContain("+export const greet = (name: string) => 'Hello, ' + name;");
    expect(existsSync(join(stateDir, 'workspaces/runs/agents/jobs/mock/backlog/1/result.json'))).toBe(false);
  });
});

describe('a running fanout run', () => {
  it('answers status and takes new sends through its own engine and queue while it runs', async () => {
    const { runLocal } = await import('../../shared/local/local-run.js');
    const { mockIssues } = await import('../../shared/domain/job.js');
    const stateDir = await mkdtemp(join(tmpdir(), 'fanout-live-'));
    const printed: string[] = [];
    const out = (text: string) => printed.push(text);
    let during: Promise<void> | undefined;
    const report = await runLocal({
      stateDir,
      workers: 2,
      batchSize: 1,
      timeoutMs: 30_000,
      maxReceiveCount: 3,
      budgetMicros: 10_000_000,
      issues: mockIssues(4),
      runId: 'live',
      agent: {
        kind: 'simulate',
        durationMs: { min: 600, max: 600 },
        failRate: 0,
        costMicros: { min: 1, max: 1 },
        seed: 1,
      },
      onEvent: (event) => {
        if (during || event.type !== 'worker' || event.event.type !== 'started') return;
        during = (async () => {
          await statusCommand(['--state-dir', stateDir, '--json'], { out });
          await sendCommand(['--mock', '2', '--local', '--state-dir', stateDir, '--run-id', 'extra'], {
            out,
          });
        })();
      },
    });
    await during;
    const snapshot = JSON.parse(printed[0] as string);
    expect(snapshot.runId).toBe('live');
    expect(snapshot.workers.some((w: { state: string }) => w.state === 'busy')).toBe(true);
    expect(printed[1]).toBe(`To the running fanout run in ${stateDir}:`);
    expect(report.totals).toMatchObject({ DONE: 4, jobs: 4 });
    // The live run drained what was sent to it meanwhile.
    printed.length = 0;
    await reportCommand(['--state-dir', stateDir, '--run-id', 'extra', '--json'], { out });
    expect(JSON.parse(printed[0] as string).totals).toMatchObject({ DONE: 2, jobs: 2 });
  });
});
