import { Match, type Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../../infra/config.js';
import { synthStack } from '../support/synth.js';

let template: Template;
let seven: Template;
beforeAll(() => {
  template = synthStack().template;
  seven = synthStack({
    workers: '7',
    reserveConcurrency: 'true',
    timeoutSeconds: '120',
    batchSize: '3',
    maxReceiveCount: '4',
    workspaceRetentionDays: '9',
  }).template;
});

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
const statements = (t: Template): Statement[] =>
  Object.values(t.findResources('AWS::IAM::Policy')).flatMap(
    (policy) =>
      (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
        .Statement,
  );

describe('job queue', () => {
  it('encrypts every queue (jobs, dead letters, two priority lanes) and refuses anything but TLS', () => {
    template.resourcePropertiesCountIs('AWS::SQS::Queue', { SqsManagedSseEnabled: true }, 4);
    template.resourceCountIs('AWS::SQS::QueuePolicy', 4);
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('keeps jobs and dead letters 14 days, the most SQS allows, and redrives after maxReceiveCount', () => {
    // SQS drops a message past its retention without dead-lettering it: a job must not expire unseen.
    template.resourcePropertiesCountIs('AWS::SQS::Queue', { MessageRetentionPeriod: 1_209_600 }, 4);
    template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: 1_209_600,
      RedrivePolicy: { maxReceiveCount: 5 },
    });
    seven.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: { maxReceiveCount: 4 } });
  });

  it('sets the visibility timeout to six times the function timeout', () => {
    template.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 5400 });
    seven.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 720 });
    seven.hasResourceProperties('AWS::Lambda::Function', { Timeout: 120 });
  });
});

describe('priority lanes', () => {
  const laneIds = (t: Template) =>
    Object.keys(t.findResources('AWS::SQS::Queue')).filter((id) => /Lane/.test(id));

  it("adds two lanes that no event source reads: the worker count stays the one mapping's concurrency", () => {
    expect(laneIds(template)).toHaveLength(2);
    for (const t of [template, seven]) {
      // One event source, on the job queue: the sum of the mappings' concurrency is the worker count.
      const mappings = Object.values(t.findResources('AWS::Lambda::EventSourceMapping')) as {
        Properties: {
          EventSourceArn: { 'Fn::GetAtt': [string, string] };
          ScalingConfig: { MaximumConcurrency: number };
        };
      }[];
      expect(mappings).toHaveLength(1);
      const [source] = mappings[0]?.Properties.EventSourceArn['Fn::GetAtt'] ?? [];
      expect(source).toMatch(/JobsQueue/);
      expect(laneIds(t)).not.toContain(source);
    }
    const sum = (t: Template) =>
      Object.values(t.findResources('AWS::Lambda::EventSourceMapping')).reduce(
        (n, m) =>
          n +
          (m as { Properties: { ScalingConfig: { MaximumConcurrency: number } } }).Properties.ScalingConfig
            .MaximumConcurrency,
        0,
      );
    expect(sum(template)).toBe(5);
    expect(sum(seven)).toBe(7);
    seven.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 7 });
  });

  it('keeps lane copies as long as jobs, hidden as long, with no redrive of their own', () => {
    for (const id of laneIds(template)) {
      const lane = template.findResources('AWS::SQS::Queue')[id] as { Properties: Record<string, unknown> };
      expect(lane.Properties).toMatchObject({ MessageRetentionPeriod: 1_209_600, VisibilityTimeout: 5400 });
      expect(lane.Properties.RedrivePolicy).toBeUndefined();
    }
  });

  it("gives the workers the lanes' URLs and lets them receive, delete, back off and copy there, nothing more", () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FANOUT_HIGH_LANE_URL: { Ref: Match.stringLikeRegexp('HighLane') },
          FANOUT_NORMAL_LANE_URL: { Ref: Match.stringLikeRegexp('NormalLane') },
        }),
      },
    });
    for (const id of laneIds(template)) {
      const onLane = statements(template).filter(
        (st) => JSON.stringify(st.Resource) === JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] }),
      );
      expect(onLane.flatMap((st) => [st.Action].flat()).sort()).toEqual([
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:ReceiveMessage',
        'sqs:SendMessage',
      ]);
    }
    template.hasOutput('HighLaneUrl', {});
    template.hasOutput('NormalLaneUrl', {});
  });
});

describe('workers', () => {
  it('runs the bundled worker on the newest Node.js runtime, arm64, with JSON logs kept a month', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 1024,
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('makes maxConcurrency = reserved concurrency = workers (-c workers=7 -c reserveConcurrency=true)', () => {
    seven.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 7 });
    seven.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 7 },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 3,
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 5 },
      BatchSize: 1,
    });
  });

  it('reserves nothing by default, so a new account (quota 10) can deploy; maxConcurrency still caps', () => {
    template.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: Match.absent() });
    const { template: unreserved } = synthStack({ reserveConcurrency: 'false', workers: '4' });
    unreserved.hasResourceProperties('AWS::Lambda::Function', {
      ReservedConcurrentExecutions: Match.absent(),
    });
    unreserved.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 4 },
    });
  });

  it('tells the worker where its table, bucket and queues are', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FANOUT_TABLE_NAME: Match.anyValue(),
          FANOUT_BUCKET_NAME: Match.anyValue(),
          FANOUT_QUEUE_URL: Match.anyValue(),
          FANOUT_DLQ_URL: Match.anyValue(),
          FANOUT_MAX_RECEIVE_COUNT: '5',
        }),
      },
    });
  });
});

describe('least privilege', () => {
  it('grants no wildcard action, and no managed policy', () => {
    const actions = statements(template).flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) {
      expect(action).not.toBe('*');
      expect(action).not.toMatch(/^(dynamodb|s3|sqs|logs):\*$/);
      expect(action).not.toMatch(/^s3:.*\*$/);
    }
    template.hasResourceProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });

  it('limits workspace objects to runs/ in the bucket, and may list it (so a missing key is 404, not 403)', () => {
    const s3 = statements(template).filter((s) => JSON.stringify(s.Action).includes('s3:'));
    expect(s3.map((s) => s.Action)).toEqual([['s3:GetObject', 's3:PutObject'], 's3:ListBucket']);
    expect(JSON.stringify(s3[0]?.Resource)).toContain('/runs/*');
    // S3 decides 404 against 403 with ListBucket in the GetObject's context, which has no s3:prefix.
    expect(s3[1]?.Condition).toBeUndefined();
  });

  it('grants the table only the item calls the worker makes', () => {
    const dynamo = statements(template).filter((s) => JSON.stringify(s.Action).includes('dynamodb:'));
    expect(dynamo.flatMap((s) => s.Action)).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    ]);
  });
});

describe('continuations and the runtime', () => {
  it('may send to its own queue, and lets Lambda carry a job through more than 16 continuations', () => {
    const sqs = statements(template).filter((s) => JSON.stringify(s.Action).includes('sqs:SendMessage'));
    const targets = sqs.map((s) => JSON.stringify(s.Resource));
    expect(targets.some((t) => t.includes('DeadLetterQueue'))).toBe(true);
    expect(targets.some((t) => /JobsQueue(?!.*DeadLetter)/.test(t))).toBe(true);
    template.hasResourceProperties('AWS::Lambda::Function', { RecursiveLoop: 'Allow' });
  });

  it('ships the source map with the flag that makes Node read it, and names the stack in its metrics', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          NODE_OPTIONS: '--enable-source-maps',
          FANOUT_STACK_NAME: 'Fanout',
          FANOUT_RETENTION_DAYS: '30',
        }),
      },
    });
    seven.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FANOUT_RETENTION_DAYS: '9' }) },
    });
  });
});

describe('state table', () => {
  it('is on demand, with point-in-time recovery, TTL, the core key design, and retained', () => {
    template.hasResource('AWS::DynamoDB::GlobalTable', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        Replicas: [
          Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
        ],
      }),
    });
  });
});

describe('workspace bucket', () => {
  it('blocks public access, encrypts, refuses plain HTTP, expires old workspaces, and is retained', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({ Prefix: 'runs/', ExpirationInDays: 30, Status: 'Enabled' }),
          ]),
        },
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: 'workspaces/' }),
      }),
    });
    seven.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'runs/', ExpirationInDays: 9 })]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('observability', () => {
  it('alarms on the DLQ, the oldest job, worker errors and spend, and notifies one topic', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 3600,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'JobCostUsd',
      Namespace: 'Fanout',
      Threshold: 40,
      Period: 86_400,
    });
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [Match.anyValue()] });
    // The worker's metrics carry the stack's name: another stack's jobs do not raise these alarms.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'JobCostUsd',
      Dimensions: Match.arrayWith([{ Name: 'stack', Value: 'Fanout' }]),
    });
  });

  it('has a dashboard of queue, workers, jobs and spend', () => {
    const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(Object.values(dashboards)[0]);
    for (const metric of [
      'ApproximateAgeOfOldestMessage',
      'ConcurrentExecutions',
      'Throttles',
      'JobsDone',
      'JobsFailed',
      'JobCostUsd',
    ]) {
      expect(body).toContain(metric);
    }
  });

  it('publishes the outputs the CLI reads', () => {
    for (const name of [
      'QueueUrl',
      'DeadLetterQueueUrl',
      'TableName',
      'BucketName',
      'BudgetUsd',
      'WorkerCount',
      'TimeoutSeconds',
      'QueueRetentionDays',
      'AgentModel',
    ]) {
      template.hasOutput(name, Match.anyValue());
    }
  });
});

describe('settings', () => {
  it('fails with every bad value named', () => {
    const context: Record<string, unknown> = {
      workers: '1',
      memoryMb: 'lots',
      reserveConcurrency: 'maybe',
      budgetUsd: '-1',
    };
    expect(() => readSettings((key) => context[key])).toThrow(
      /workers must be a whole number from 2 to 1000, not "1" \(the SQS event source[\s\S]*budgetUsd[\s\S]*memoryMb[\s\S]*reserveConcurrency must be true or false/,
    );
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('finds no unacknowledged problem, and every acknowledgment has a reason', () => {
    const { app, stack } = synthStack();
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    const acknowledged = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === 'aws:cdk:acknowledged-rules')
      .flatMap((m) => Object.entries(m.data as Record<string, string>));
    expect(acknowledged.map(([id]) => id).sort()).toEqual([
      expect.stringMatching(/AwsSolutions-IAM5\[Resource::.*\/runs\/\*\]/),
      // The two priority lanes hold copies and have no dead-letter queue of their own.
      'Annotation::AwsSolutions-SQS3',
      'Annotation::AwsSolutions-SQS3',
    ]);
    for (const [, reason] of acknowledged) expect(reason.length).toBeGreaterThan(40);
  });
});

describe('the llm agent on AWS', () => {
  it('may invoke its one model, read its one secret, and has the room it needs', () => {
    const {
      app,
      stack,
      template: agentTemplate,
    } = synthStack({
      agentModel: 'anthropic.claude-sonnet-4-20250514-v1:0',
      publish: 'pr',
      githubTokenSecret: 'fanout/github-token',
    });
    agentTemplate.hasResourceProperties('AWS::Lambda::Function', {
      EphemeralStorage: { Size: 2048 },
      Environment: {
        Variables: Match.objectLike({
          FANOUT_AGENT: JSON.stringify({
            kind: 'llm',
            model: 'anthropic.claude-sonnet-4-20250514-v1:0',
            publish: 'pr',
          }),
          FANOUT_GITHUB_TOKEN_SECRET: 'fanout/github-token',
        }),
      },
    });
    const all = statements(agentTemplate);
    const bedrock = all.filter((s) => JSON.stringify(s.Action).includes('bedrock:'));
    expect(bedrock.map((s) => s.Action)).toEqual(['bedrock:InvokeModel']);
    expect(JSON.stringify(bedrock[0]?.Resource)).toContain(
      'foundation-model/anthropic.claude-sonnet-4-20250514-v1:0',
    );
    const secrets = all.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:'));
    expect(secrets.flatMap((s) => s.Action)).toEqual(['secretsmanager:GetSecretValue']);
    expect(JSON.stringify(secrets[0]?.Resource)).toContain('secret:fanout/github-token');
    for (const action of all.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]))) {
      expect(action).not.toMatch(/\*$/);
    }
    expect(new AwsSolutionsChecks(app).validateScope(stack).violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('grants an inference profile, and its model in every Region it routes to, only through that profile', () => {
    const {
      app,
      stack,
      template: profiled,
    } = synthStack({ agentModel: 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0' });
    const bedrock = statements(profiled).filter((s) => JSON.stringify(s.Action).includes('bedrock:'));
    expect(bedrock).toHaveLength(2);
    expect(JSON.stringify(bedrock[0]?.Resource)).toMatch(
      /:bedrock:",\{"Ref":"AWS::Region"\},":",\{"Ref":"AWS::AccountId"\},":inference-profile\/eu\.anthropic\.claude-sonnet-4-5-20250929-v1:0"/,
    );
    const regions = ((bedrock[1]?.Resource ?? []) as unknown[]).map((r) =>
      JSON.stringify(r)
        .match(/bedrock:([a-z0-9-]*)::foundation-model\/([^"]+)"/)
        ?.slice(1),
    );
    expect(regions.map((r) => r?.[1])).toEqual(
      Array(regions.length).fill('anthropic.claude-sonnet-4-5-20250929-v1:0'),
    );
    expect(regions.map((r) => r?.[0])).toEqual(
      expect.arrayContaining(['eu-central-1', 'eu-west-1', 'eu-west-3', 'eu-north-1']),
    );
    expect(JSON.stringify(bedrock[1]?.Condition)).toContain('bedrock:InferenceProfileArn');
    expect(new AwsSolutionsChecks(app).validateScope(stack).violations.map((v) => v.ruleName)).toEqual([]);
    // A global profile may route anywhere: the model in any Region, through that profile only.
    const {
      app: gApp,
      stack: gStack,
      template: global,
    } = synthStack({ agentModel: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' });
    const g = statements(global).filter((s) => JSON.stringify(s.Action).includes('bedrock:'));
    expect(JSON.stringify(g[1]?.Resource)).toContain(
      ':bedrock:*::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
    );
    expect(new AwsSolutionsChecks(gApp).validateScope(gStack).violations.map((v) => v.ruleName)).toEqual([]);
  });

  it('may decrypt the token secret with its customer key, when the secret has one', () => {
    const key = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const { template: keyed } = synthStack({
      githubTokenSecret: 'fanout/github-token',
      githubTokenKmsKeyArn: key,
    });
    const kms = statements(keyed).filter((s) => JSON.stringify(s.Action).includes('kms:'));
    expect(kms.map((s) => [s.Action, s.Resource])).toEqual([['kms:Decrypt', key]]);
    expect(statements(template).some((s) => JSON.stringify(s.Action).includes('kms:'))).toBe(false);
  });

  it('refuses publishing without a token secret, and a model id that is not one', () => {
    const context: Record<string, unknown> = { publish: 'pr', agentModel: 'not a model' };
    expect(() => readSettings((key) => context[key])).toThrow(
      /agentModel must be a Bedrock model id[\s\S]*publish needs githubTokenSecret/,
    );
  });
});

describe('the sandbox function (-c sandbox=lambda)', () => {
  type Resources = Record<string, { Properties: Record<string, unknown> }>;
  const sandboxed = () => synthStack({ agentModel: 'scripted:demo', sandbox: 'lambda' });
  const roleOf = (fn: { Properties: Record<string, unknown> }) =>
    JSON.stringify(fn.Properties.Role).match(/"(\w+Role\w*)"/)?.[1] as string;
  const functions = (t: Template) => t.findResources('AWS::Lambda::Function') as Resources;
  const policiesOf = (t: Template, roleId: string) =>
    Object.values(t.findResources('AWS::IAM::Policy') as Resources).filter((p) =>
      JSON.stringify(p.Properties.Roles).includes(roleId),
    );

  it('is not there by default, and the stack says so', () => {
    expect(Object.keys(functions(template)).filter((id) => id.startsWith('SandboxFunction'))).toEqual([]);
    template.hasOutput('Sandbox', { Value: 'none' });
  });

  it('has a role that may write its own logs and nothing else, and an environment with nothing in it', () => {
    const { template: t } = sandboxed();
    const [id, fn] = Object.entries(functions(t)).find(([key]) => key.startsWith('SandboxFunction')) ?? [];
    expect(id).toBeDefined();
    // No variable at all: no secret, no table, bucket or queue name.
    expect(fn?.Properties.Environment).toBeUndefined();
    expect(fn?.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 900,
      MemorySize: 2048,
    });
    const roleId = roleOf(fn as never);
    const role = t.findResources('AWS::IAM::Role')[roleId] as { Properties: Record<string, unknown> };
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
    const granted = policiesOf(t, roleId).flatMap(
      (p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    );
    expect(granted).toHaveLength(1);
    expect(granted[0]?.Action).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
    // Its own log group only.
    const logGroupId = JSON.stringify(fn?.Properties.LoggingConfig).match(/"(\w*Logs\w*)"/)?.[1] as string;
    expect(JSON.stringify(granted[0]?.Resource)).toContain(logGroupId);
    expect(logGroupId).toMatch(/^SandboxFunction/);
  });

  it('may be invoked by the worker, which may invoke it and no other function; the worker knows its name and price', () => {
    const { template: t } = sandboxed();
    const sandboxId = Object.keys(functions(t)).find((key) => key.startsWith('SandboxFunction')) as string;
    const invoke = statements(t).filter((s) => JSON.stringify(s.Action).includes('lambda:'));
    expect(invoke).toEqual([
      { Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [sandboxId, 'Arn'] } },
    ]);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          FANOUT_SANDBOX_FUNCTION: { Ref: sandboxId },
          // 2 GB at the Arm price of a GB-second, 13.3334 micro-USD: 27 a second.
          FANOUT_SANDBOX_MICROS_PER_SECOND: '27',
        }),
      },
    });
    t.hasOutput('Sandbox', { Value: 'lambda' });
  });

  it('passes cdk-nag with nothing acknowledged beyond the stack without it', () => {
    const { app, stack } = sandboxed();
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    const acknowledged = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === 'aws:cdk:acknowledged-rules');
    expect(acknowledged).toHaveLength(3);
  });

  it('builds from a Dockerfile with -c sandboxImage (an image asset: Docker builds it at deploy), and refuses a bad one', () => {
    const { template: t } = synthStack({
      sandbox: 'lambda',
      sandboxImage: 'infra/sandbox-image/Dockerfile',
      sandboxMemoryMb: '4096',
    });
    const fn = Object.entries(functions(t)).find(([key]) => key.startsWith('SandboxFunction'))?.[1];
    expect(fn?.Properties).toMatchObject({
      PackageType: 'Image',
      Architectures: ['x86_64'],
      MemorySize: 4096,
    });
    expect(JSON.stringify(fn?.Properties.Code)).toContain('ImageUri');
    expect(fn?.Properties.Environment).toBeUndefined();
    // 4 GB at the x86 price of a GB-second, 16.6667 micro-USD: 67 a second.
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ FANOUT_SANDBOX_MICROS_PER_SECOND: '67' }) },
    });
    expect(() => synthStack({ sandbox: 'docker' })).toThrow(/sandbox must be none or lambda/);
    expect(() => synthStack({ sandboxImage: 'infra/sandbox-image/Dockerfile' })).toThrow(
      /needs sandbox=lambda/,
    );
    expect(() => synthStack({ sandbox: 'lambda', sandboxImage: 'nowhere/Dockerfile' })).toThrow(
      /does not exist/,
    );
  });
});
