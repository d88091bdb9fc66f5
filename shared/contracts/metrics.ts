/**
 * The worker's CloudWatch metrics, as the stack's alarms and dashboard read them: one
 * list, written by the worker (shared/adapters/powertools.ts) and read by
 * infra/constructs/observability.ts, so a renamed metric cannot leave an alarm watching
 * nothing.
 */
export const METRICS_NAMESPACE = 'Fanout';
/** Powertools' `service` dimension of every metric. */
export const METRICS_SERVICE = 'fanout-worker';

export const METRIC = {
  jobsDone: 'JobsDone',
  jobsFailed: 'JobsFailed',
  jobsSkipped: 'JobsSkipped',
  /** Milliseconds the agent worked on a finished job, across its invocations. */
  jobDuration: 'JobDuration',
  /** USD every attempt spent (retried, lost-lease and continued ones too). */
  jobCostUsd: 'JobCostUsd',
  leaseConflicts: 'LeaseConflicts',
  continuations: 'Continuations',
  budgetRefusals: 'BudgetRefusals',
} as const;
