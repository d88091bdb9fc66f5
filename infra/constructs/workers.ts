import { type CfnResource, type Duration, Size, Stack, Validations } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface WorkersProps {
  readonly queue: IQueue;
  readonly deadLetterQueue: IQueue;
  readonly table: ITableV2;
  readonly bucket: IBucket;
  /** Concurrent workers: event-source maxConcurrency, and reserved concurrency when reserved. */
  readonly workers: number;
  /** Reserve `workers` of the account's concurrency. @default true */
  readonly reserveConcurrency?: boolean;
  readonly timeout: Duration;
  /** @default 1024 */
  readonly memoryMb?: number;
  /** @default 1 */
  readonly batchSize?: number;
  readonly maxReceiveCount: number;
  /** @default one month */
  readonly logRetention?: RetentionDays;
  /** The Bedrock model of the llm agent: the worker may invoke this model and no other. */
  readonly agentModel?: string;
  /** @default none */
  readonly publish?: 'none' | 'comment' | 'pr';
  /** The secret holding the GitHub token: read by the worker, never passed to the agent. */
  readonly githubTokenSecret?: string;
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
      reservedConcurrentExecutions: props.reserveConcurrency === false ? undefined : props.workers,
      loggingFormat: LoggingFormat.JSON,
      logGroup: this.logGroup,
      environment: {
        FANOUT_TABLE_NAME: props.table.tableName,
        FANOUT_BUCKET_NAME: props.bucket.bucketName,
        FANOUT_QUEUE_URL: props.queue.queueUrl,
        FANOUT_DLQ_URL: props.deadLetterQueue.queueUrl,
        FANOUT_MAX_RECEIVE_COUNT: String(props.maxReceiveCount),
        FANOUT_WORKERS: String(props.workers),
        POWERTOOLS_SERVICE_NAME: 'fanout-worker',
        POWERTOOLS_METRICS_NAMESPACE: 'Fanout',
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
        'FANOUT_AGENT',
        JSON.stringify({ kind: 'llm', model: props.agentModel, publish: props.publish ?? 'none' }),
      );
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['bedrock:InvokeModel'],
          resources: [
            Stack.of(this).formatArn({
              service: 'bedrock',
              account: '',
              resource: 'foundation-model',
              resourceName: props.agentModel,
            }),
          ],
        }),
      );
    }
    if (props.githubTokenSecret) {
      Secret.fromSecretNameV2(this, 'GitHubToken', props.githubTokenSecret).grantRead(this.role);
      this.function.addEnvironment('FANOUT_GITHUB_TOKEN_SECRET', props.githubTokenSecret);
    }
    props.table.grantReadWriteData(this.function);
    props.deadLetterQueue.grantSendMessages(this.function);
    // Workspaces: objects under runs/ only, and the four calls the S3 workspace makes.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: [props.bucket.arnForObjects('runs/*')],
      }),
    );
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': ['runs/*'] } },
      }),
    );
    const bucketId = Stack.of(this).resolve((props.bucket.node.defaultChild as CfnResource).logicalId);
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/runs/*]`,
      reason:
        'Workspace objects are runs/{runId}/jobs/{owner}/{repo}/{n}/*, known only at run time; the worker ' +
        'may touch runs/* and nothing else in the bucket, and its actions are listed one by one.',
    });
  }
}
