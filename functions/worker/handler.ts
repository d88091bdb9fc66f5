/**
 * The Lambda worker: wires the adapters once per cold start from validated
 * configuration, then runs the core on each SQS batch with partial batch failures.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { dynamoState } from '../../shared/adapters/dynamo/index.js';
import { secretToken } from '../../shared/adapters/github-token.js';
import { LambdaSandbox } from '../../shared/adapters/lambda-sandbox.js';
import { powertoolsLogger, recordMetrics } from '../../shared/adapters/powertools.js';
import { S3WorkspaceStore } from '../../shared/adapters/s3-workspace.js';
import { emptyDirectory } from '../../shared/adapters/scratch-dir.js';
import { recordFromLambda, SqsJobQueue } from '../../shared/adapters/sqs-queue.js';
import { workerAgents } from '../../shared/agents/index.js';
import { loadWorkerConfig } from '../../shared/config/worker-config.js';
import { METRICS_NAMESPACE, METRICS_SERVICE } from '../../shared/contracts/metrics.js';
import { holdSlot } from '../../shared/domain/slot-keeper.js';
import { processBatch } from '../../shared/domain/worker.js';

const config = loadWorkerConfig(process.env);
const logger = new Logger({ serviceName: METRICS_SERVICE });
const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: METRICS_SERVICE,
  ...(config.stackName ? { defaultDimensions: { stack: config.stackName } } : {}),
});
const state = dynamoState({
  tableName: config.tableName,
  client: new DynamoDBClient({}),
  retentionDays: config.retentionDays,
});
const queue = new SqsJobQueue({
  client: new SQSClient({}),
  queueUrl: config.queueUrl,
  deadLetterQueueUrl: config.deadLetterQueueUrl,
  laneUrls: config.laneUrls,
});
const workspaces = new S3WorkspaceStore({
  client: new S3Client({ forcePathStyle: config.s3ForcePathStyle }),
  bucket: config.bucketName,
});
// The GitHub token stays with the worker (snapshots, publishing); the agent never receives it.
// Read at cold start, so a missing secret or permission fails here; read again after a 401.
const github = config.githubTokenSecret
  ? secretToken(new SecretsManagerClient({}), config.githubTokenSecret)
  : undefined;
await github?.get();
// The sandbox function (-c sandbox=lambda): the worker stores a room's files under the job's
// prefix and hands the function presigned URLs; the function itself can reach nothing.
const sandbox = config.sandbox;
const agents = workerAgents(config.agent, {
  github,
  githubApiUrl: config.githubApiUrl,
  ...(sandbox
    ? {
        sandbox: () =>
          new LambdaSandbox({
            lambda: new LambdaClient({}),
            functionName: sandbox.functionName,
            s3: { forcePathStyle: config.s3ForcePathStyle },
            bucket: config.bucketName,
            scratch: config.scratchDir,
          }),
        sandboxMicrosPerSecond: sandbox.microsPerSecond,
      }
    : {}),
});
// Each execution environment starts looking for a free slot at its own place.
const preferredSlot = Number.parseInt((process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? '0').slice(-6), 16) || 0;

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  const owner = context.awsRequestId;
  const remaining = context.getRemainingTimeInMillis();
  // A worker identity (worker-01..N) for the length of this invocation, so status shows the fleet.
  const slot = await holdSlot(state, {
    owner,
    leaseMs: remaining + 5000,
    clock: Date.now,
    slot: { count: config.workers, prefer: preferredSlot },
  });
  const workerId = slot?.workerId ?? `lambda-${owner.slice(0, 8)}`;
  try {
    return await processBatch(event.Records.map(recordFromLambda), {
      state,
      queue,
      workspaces,
      ...agents,
      logger: powertoolsLogger(logger),
      clock: Date.now,
      workerId,
      owner,
      leaseMs: config.leaseMs,
      heartbeatMs: Math.floor(config.leaseMs / 3),
      maxReceiveCount: config.maxReceiveCount,
      deadline: Date.now() + remaining,
      beforeJob: () => emptyDirectory(config.scratchDir),
      onEvent: recordMetrics(metrics),
    });
  } finally {
    await slot?.release().catch(() => undefined);
    metrics.publishStoredMetrics();
  }
};
