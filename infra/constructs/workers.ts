import { type CfnResource, type Duration, Size, Stack, Validations } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Architecture, type IFunction, LoggingFormat, RecursiveLoop, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEMO_MODEL, parseModelId } from '../../shared/agents/model-ids.js';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../../shared/contracts/metrics.js';
import { WORKER_ENV } from '../../shared/contracts/worker-env.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface WorkersProps {
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  /** The priority lanes the workers take jobs ahead from. @default none: jobs start in the queue's order */
  readonly lanes?: { readonly high: IQueue; readonly normal: IQueue };
  readonly table: ITableV2;
  readonly bucket: IBucket;
  /** Concurrent workers: event-source maxConcurrency, and reserved concurrency when reserved. */
  readonly workers: number;
  /** Reserve `workers` of the account's concurrency. @default false */
  readonly reserveConcurrency?: boolean;
  readonly timeout: Duration;
  /** @default 1024 */
  readonly memoryMb?: number;
  /** @default 1 */
  readonly batchSize?: number;
  readonly maxReceiveCount: number;
  /** @default one month */
  readonly logRetention?: RetentionDays;
  /**
   * The Bedrock model of the llm agent, a foundation model id or an inference profile id
   * (`us.anthropic...`): the worker may invoke this model and no other.
   */
  readonly agentModel?: string;
  /** @default none */
  readonly publish?: 'none' | 'comment' | 'pr';
  /** The secret holding the GitHub token: read by the worker, never passed to the agent. */
  readonly githubTokenSecret?: string;
  /** The customer managed KMS key the secret is encrypted with, if not the AWS managed one. */
  readonly githubTokenKmsKeyArn?: string;
  /** Days a job's state record is kept (DynamoDB TTL), like its workspace. @default 30 */
  readonly retentionDays?: number;
  /** Names the stack in the metrics' dimensions, so two stacks in one account keep their alarms apart. */
  readonly metricsStack?: string;
  /** The sandbox function: the worker may invoke it and no other function. @default none */
  readonly sandbox?: { readonly function: IFunction; readonly microsPerSecond: number };
}

/** The worker function and the SQS event source that feeds it. */
export class Workers extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: WorkersProps) {
    super(scope, id);
    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention ?? RetentionDays.ONE_MONTH });
    // Our own role: the managed basic-execution policy would allow writing to any log group.
    this.role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    this.logGroup.grantWrite(this.role);
    this.function = new NodejsFunction(this, 'Function', {
      entry: `${ROOT}functions/worker/handler.ts`,
      projectRoot: ROOT,
      depsLockFilePath: `${ROOT}package-lock.json`,
      role: this.role,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memoryMb ?? 1024,
      // The llm agent keeps nothing in /tmp (its files are in S3), but snapshots pass through memory and disk.
      ephemeralStorageSize: Size.mebibytes(props.agentModel ? 2048 : 512),
      timeout: props.timeout,
      // Reserved = maxConcurrency: the poller never starts more than may run (pitfall 1).
      reservedConcurrentExecutions: props.reserveConcurrency === true ? props.workers : undefined,
      // A job longer than one invocation continues in a new message on its own queue, an
      // SQS -> Lambda -> SQS loop that Lambda stops after about 16 hops; a job may continue
      // for 6 hours (24 invocations of 15 minutes). The core bounds the loop itself: the
      // run-time limit and a cap on continuations (RUN_TIME_EXCEEDED).
      recursiveLoop: RecursiveLoop.ALLOW,
      loggingFormat: LoggingFormat.JSON,
      logGroup: this.logGroup,
      environment: {
        [WORKER_ENV.tableName]: props.table.tableName,
        [WORKER_ENV.bucketName]: props.bucket.bucketName,
        [WORKER_ENV.queueUrl]: props.queue.queueUrl,
        [WORKER_ENV.deadLetterQueueUrl]: props.deadLetterQueue.queueUrl,
        ...(props.lanes
          ? {
              [WORKER_ENV.highLaneUrl]: props.lanes.high.queueUrl,
              [WORKER_ENV.normalLaneUrl]: props.lanes.normal.queueUrl,
            }
          : {}),
        [WORKER_ENV.maxReceiveCount]: String(props.maxReceiveCount),
        [WORKER_ENV.workers]: String(props.workers),
        [WORKER_ENV.retentionDays]: String(props.retentionDays ?? 30),
        POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...(props.metricsStack ? { [WORKER_ENV.stackName]: props.metricsStack } : {}),
        // The bundle ships its source map; Node reads it only with this flag.
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        minify: true,
        sourceMap: true,
        forceDockerBundling: false,
        // Bundle the SDK too: the worker runs the exact versions it was tested with.
        externalModules: [],
        // CommonJS dependencies inside an ESM bundle still call require().
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
    this.function.addEventSource(
      new SqsEventSource(props.queue, {
        batchSize: props.batchSize ?? 1,
        reportBatchItemFailures: true,
        maxConcurrency: props.workers,
      }),
    );
    if (props.agentModel) {
      this.function.addEnvironment(
        WORKER_ENV.agent,
        JSON.stringify({ kind: 'llm', model: props.agentModel, publish: props.publish ?? 'none' }),
      );
      if (props.agentModel !== DEMO_MODEL) this.grantModel(props.agentModel);
    }
    if (props.sandbox) {
      // Invoke on this one function: not grantInvoke, whose second resource (`<arn>:*`, its
      // versions and aliases) the worker never calls.
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: [props.sandbox.function.functionArn],
        }),
      );
      this.function.addEnvironment(WORKER_ENV.sandboxFunction, props.sandbox.function.functionName);
      this.function.addEnvironment(WORKER_ENV.sandboxMicrosPerSecond, String(props.sandbox.microsPerSecond));
    }
    if (props.githubTokenSecret) {
      // GetSecretValue only (grantRead adds DescribeSecret, which the worker never calls); a
      // secret's ARN ends in a dash and six random characters.
      const secret = Secret.fromSecretNameV2(this, 'GitHubToken', props.githubTokenSecret);
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: [`${secret.secretArn}-??????`],
        }),
      );
      this.function.addEnvironment(WORKER_ENV.githubTokenSecret, props.githubTokenSecret);
      if (props.githubTokenKmsKeyArn) {
        // A secret under a customer key is decrypted through Secrets Manager, with the caller's kms:Decrypt.
        Key.fromKeyArn(this, 'GitHubTokenKey', props.githubTokenKmsKeyArn).grantDecrypt(this.role);
      }
    }
    // The state table: the item calls the worker makes (the lease, ledger and slot writes are
    // UpdateItem; its reads GetItem, and BatchGetItem for the ledger's shards when a takeover
    // looks for what a dead attempt left open or the budget's spare credit is gathered).
    // Nothing else: no scan, no delete.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['dynamodb:BatchGetItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [props.table.tableArn],
      }),
    );
    props.deadLetterQueue.grantSendMessages(this.function);
    // Continuations: a job that outlives its invocation goes on in a new message on its own queue.
    props.queue.grantSendMessages(this.function);
    // The lanes: taken ahead (receive, delete, a backoff's visibility change) and copied to
    // with a continuation. No event source reads them.
    for (const lane of props.lanes ? [props.lanes.high, props.lanes.normal] : []) {
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: [
            'sqs:ReceiveMessage',
            'sqs:DeleteMessage',
            'sqs:ChangeMessageVisibility',
            'sqs:SendMessage',
          ],
          resources: [lane.queueArn],
        }),
      );
    }
    // Workspaces: objects under runs/ only, and the calls the S3 workspace makes.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [props.bucket.arnForObjects('runs/*')],
      }),
    );
    // ListBucket on the bucket, unconditioned: S3 answers 404 for a missing key only to a caller
    // allowed to list the bucket, evaluated in the GetObject's context, which carries no s3:prefix
    // (a prefix condition would turn every "missing" into 403). The bucket holds only runs/.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn] }),
    );
    const bucketId = Stack.of(this).resolve((props.bucket.node.defaultChild as CfnResource).logicalId);
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/runs/*]`,
      reason:
        'Workspace objects are runs/{runId}/jobs/{owner}/{repo}/{n}/*, known only at run time; the worker ' +
        'may touch runs/* and nothing else in the bucket, and its actions are listed one by one.',
    });
  }

  /**
   * bedrock:InvokeModel (Converse) on one model. A foundation model id is granted in the
   * stack's Region. An inference profile is granted itself, and its foundation model in
   * every Region the profile routes to, only through that profile.
   */
  private grantModel(modelId: string): void {
    const stack = Stack.of(this);
    const model = parseModelId(modelId);
    const foundationModel = (region: string) =>
      `arn:${stack.partition}:bedrock:${region}::foundation-model/${model.baseId}`;
    if (!model.geography) {
      this.role.addToPrincipalPolicy(
        new PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: [foundationModel(stack.region)] }),
      );
      return;
    }
    const profileArn = `arn:${stack.partition}:bedrock:${stack.region}:${stack.account}:inference-profile/${model.id}`;
    this.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: [profileArn] }),
    );
    const global = model.destinationRegions.includes('*');
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['bedrock:InvokeModel'],
        // A global profile routes to any commercial Region, named in the ARN or left empty.
        resources: global
          ? [foundationModel('*'), foundationModel('')]
          : model.destinationRegions.map(foundationModel),
        conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
      }),
    );
    if (global) {
      Validations.of(this.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${model.baseId}]`,
        reason:
          'A global inference profile routes each call to a Region Bedrock picks; the grant names one model and ' +
          'holds only for calls made through that profile (bedrock:InferenceProfileArn).',
      });
    }
  }
}
