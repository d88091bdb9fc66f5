import type { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC } from '../contracts/metrics.js';
import type { WorkerEvent } from '../domain/worker.js';
import type { Logger } from '../ports/agent.js';

/** The core's logger port on Powertools' structured JSON logger. */
export function powertoolsLogger(logger: PowertoolsLogger): Logger {
  return {
    info: (message, fields) => logger.info(message, fields ?? {}),
    warn: (message, fields) => logger.warn(message, fields ?? {}),
    error: (message, fields) => logger.error(message, fields ?? {}),
  };
}

/**
 * Worker events as CloudWatch metrics (Embedded Metric Format): jobs done, failed and
 * skipped, duration, cost, lease conflicts and budget refusals. Alarms key on these names.
 */
export function recordMetrics(metrics: Metrics): (event: WorkerEvent) => void {
  return (event) => {
    if (event.type === 'deferred') {
      metrics.addMetric(METRIC.leaseConflicts, MetricUnit.Count, 1);
      return;
    }
    if (event.type === 'continued') {
      metrics.addMetric(METRIC.continuations, MetricUnit.Count, 1);
      return;
    }
    if (event.type === 'spent') {
      // Every attempt's spend (retried, lost-lease, continued ones too), so the spend alarm sees every dollar.
      metrics.addMetric(METRIC.jobCostUsd, MetricUnit.NoUnit, event.costMicros / 1e6);
      return;
    }
    if (event.type !== 'finished') return;
    const name = { DONE: METRIC.jobsDone, FAILED: METRIC.jobsFailed, SKIPPED: METRIC.jobsSkipped }[
      event.status
    ];
    metrics.addMetric(name, MetricUnit.Count, 1);
    metrics.addMetric(METRIC.jobDuration, MetricUnit.Milliseconds, event.durationMs);
    if (event.errorCode === 'BUDGET_EXHAUSTED') metrics.addMetric(METRIC.budgetRefusals, MetricUnit.Count, 1);
  };
}
