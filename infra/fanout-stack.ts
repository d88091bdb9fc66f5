import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { STACK_OUTPUT } from '../shared/contracts/stack-outputs.js';
import { type FanoutSettings, visibilityTimeoutSeconds } from './config.js';
import { JOB_RETENTION_DAYS, JobQueue } from './constructs/job-queue.js';
import { Observability } from './constructs/observability.js';
import { SandboxFunction } from './constructs/sandbox-function.js';
import { StateTable } from './constructs/state-table.js';
import { Workers } from './constructs/workers.js';
import { WorkspaceBucket } from './constructs/workspace-bucket.js';

export interface FanoutStackProps extends StackProps {
  readonly settings: FanoutSettings;
}

/** The fan-out on AWS: queue, workers, state, workspaces and the view of them. */
export class FanoutStack extends Stack {
  readonly jobs: JobQueue;
  readonly state: StateTable;
  readonly workspaces: WorkspaceBucket;
  readonly workers: Workers;
  readonly observability: Observability;
  readonly sandbox: SandboxFunction | undefined;

  constructor(scope: Construct, id: string, props: FanoutStackProps) {
    super(scope, id, props);
    const s = props.settings;
    this.jobs = new JobQueue(this, 'Jobs', {
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(s)),
      maxReceiveCount: s.maxReceiveCount,
    });
    this.state = new StateTable(this, 'State');
    this.workspaces = new WorkspaceBucket(this, 'Workspaces', { retentionDays: s.workspaceRetentionDays });
    this.sandbox =
      s.sandbox === 'lambda'
        ? new SandboxFunction(this, 'SandboxFunction', {
            memoryMb: s.sandboxMemoryMb,
            ...(s.sandboxImage ? { image: s.sandboxImage } : {}),
          })
        : undefined;
    this.workers = new Workers(this, 'Workers', {
      queue: this.jobs.queue,
      deadLetterQueue: this.jobs.deadLetterQueue,
      lanes: this.jobs.lanes,
      table: this.state.table,
      bucket: this.workspaces.bucket,
      workers: s.workers,
      reserveConcurrency: s.reserveConcurrency,
      timeout: Duration.seconds(s.timeoutSeconds),
      memoryMb: s.memoryMb,
      batchSize: s.batchSize,
      maxReceiveCount: s.maxReceiveCount,
      ...(s.agentModel ? { agentModel: s.agentModel } : {}),
      ...(s.publish ? { publish: s.publish } : {}),
      ...(s.githubTokenSecret ? { githubTokenSecret: s.githubTokenSecret } : {}),
      ...(s.githubTokenKmsKeyArn ? { githubTokenKmsKeyArn: s.githubTokenKmsKeyArn } : {}),
      retentionDays: s.workspaceRetentionDays,
      metricsStack: this.stackName,
      ...(this.sandbox
        ? { sandbox: { function: this.sandbox.function, microsPerSecond: this.sandbox.microsPerSecond } }
        : {}),
    });
    this.observability = new Observability(this, 'Observability', {
      queue: this.jobs.queue,
      deadLetterQueue: this.jobs.deadLetterQueue,
      function: this.workers.function,
      metricsStack: this.stackName,
      budgetUsd: s.budgetUsd,
      spendAlarmPercent: s.spendAlarmPercent,
      oldestMessageAlarmMinutes: s.oldestMessageAlarmMinutes,
      ...(s.alarmEmail ? { alarmEmail: s.alarmEmail } : {}),
    });

    // The CLI reads these by name (fanout send --stack, fanout status --stack).
    new CfnOutput(this, STACK_OUTPUT.queueUrl, { value: this.jobs.queue.queueUrl });
    new CfnOutput(this, STACK_OUTPUT.deadLetterQueueUrl, { value: this.jobs.deadLetterQueue.queueUrl });
    new CfnOutput(this, STACK_OUTPUT.highLaneUrl, { value: this.jobs.lanes.high.queueUrl });
    new CfnOutput(this, STACK_OUTPUT.normalLaneUrl, { value: this.jobs.lanes.normal.queueUrl });
    new CfnOutput(this, STACK_OUTPUT.tableName, { value: this.state.table.tableName });
    new CfnOutput(this, STACK_OUTPUT.bucketName, { value: this.workspaces.bucket.bucketName });
    new CfnOutput(this, STACK_OUTPUT.budgetUsd, { value: String(s.budgetUsd) });
    new CfnOutput(this, STACK_OUTPUT.workerCount, { value: String(s.workers) });
    new CfnOutput(this, STACK_OUTPUT.timeoutSeconds, { value: String(s.timeoutSeconds) });
    new CfnOutput(this, STACK_OUTPUT.queueRetentionDays, { value: String(JOB_RETENTION_DAYS) });
    // `fanout send` refuses a run whose model the workers may not invoke.
    new CfnOutput(this, STACK_OUTPUT.agentModel, { value: s.agentModel ?? 'none' });
    // `fanout send --sandbox` refuses a stack without a sandbox function.
    new CfnOutput(this, STACK_OUTPUT.sandbox, { value: s.sandbox });
    new CfnOutput(this, STACK_OUTPUT.dashboardName, { value: this.observability.dashboard.dashboardName });
  }
}
