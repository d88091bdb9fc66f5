/**
 * The outputs a fanout stack publishes and the command line reads (`fanout send --stack`,
 * `status --stack`): written by infra/fanout-stack.ts, read by cli/targets.ts.
 */
export const STACK_OUTPUT = {
  queueUrl: 'QueueUrl',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
  /** The priority lanes (README, "Priorities"): `fanout send` copies high and normal jobs to them. */
  highLaneUrl: 'HighLaneUrl',
  normalLaneUrl: 'NormalLaneUrl',
  tableName: 'TableName',
  bucketName: 'BucketName',
  budgetUsd: 'BudgetUsd',
  workerCount: 'WorkerCount',
  timeoutSeconds: 'TimeoutSeconds',
  queueRetentionDays: 'QueueRetentionDays',
  /** The one Bedrock model the workers may invoke, or 'none'. */
  agentModel: 'AgentModel',
  dashboardName: 'DashboardName',
  /** Where the llm agent's commands may run: 'lambda' (a sandbox function) or 'none'. */
  sandbox: 'Sandbox',
} as const;
