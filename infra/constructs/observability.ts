import { Duration, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE, METRICS_SERVICE } from '../../shared/contracts/metrics.js';

export interface ObservabilityProps {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly function: IFunction;
  /** The `stack` dimension the worker's metrics carry, so each stack's alarms see only its own. */
  readonly metricsStack: string;
  readonly budgetUsd: number;
  /** Share of the budget, in percent, whose spend in a day raises the spend alarm. @default 80 */
  readonly spendAlarmPercent?: number;
  /** @default 60 */
  readonly oldestMessageAlarmMinutes?: number;
  readonly alarmEmail?: string;
}

const fanoutMetric = (stack: string, metricName: string, statistic: string, period = Duration.minutes(5)) =>
  new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    statistic,
    period,
    dimensionsMap: { service: METRICS_SERVICE, stack },
  });

/** A dashboard of the fleet, and alarms on the DLQ, the queue's age, worker errors and spend. */
export class Observability extends Construct {
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[];
  readonly topic: Topic;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { queue, deadLetterQueue: dlq } = props;
    const fn = props.function;
    const metric = (name: string, statistic: string, period?: Duration) =>
      fanoutMetric(props.metricsStack, name, statistic, period);
    const spend = metric(METRIC.jobCostUsd, 'Sum', Duration.days(1));

    this.topic = new Topic(this, 'AlarmTopic', { enforceSSL: true });
    // enforceSSL gives the topic a policy of its own, which replaces the default one that let
    // the account's services publish: without this statement no alarm would ever be delivered.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const threshold = (props.budgetUsd * (props.spendAlarmPercent ?? 80)) / 100;
    this.alarms = [
      new Alarm(this, 'DeadLetterQueueNotEmpty', {
        alarmDescription: 'Jobs failed: read their reasons with `fanout report`, then `fanout redrive`.',
        metric: dlq.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(1),
          statistic: 'Maximum',
        }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
      new Alarm(this, 'OldestJobWaiting', {
        alarmDescription: 'Jobs wait longer than expected: workers may be throttled, failing or too few.',
        metric: queue.metricApproximateAgeOfOldestMessage({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        threshold: (props.oldestMessageAlarmMinutes ?? 60) * 60,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
      new Alarm(this, 'WorkerErrors', {
        alarmDescription: 'The worker function failed invocations (crashes or timeouts), not job failures.',
        metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
      new Alarm(this, 'SpendNearBudget', {
        alarmDescription: `Agents spent over ${props.spendAlarmPercent ?? 80}% of the ${props.budgetUsd} USD budget in a day.`,
        metric: spend,
        threshold,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    ];
    for (const alarm of this.alarms) alarm.addAlarmAction(new SnsAction(this.topic));

    this.dashboard = new Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new GraphWidget({
            title: 'Queue',
            left: [
              queue.metricApproximateNumberOfMessagesVisible({ label: 'waiting' }),
              queue.metricApproximateNumberOfMessagesNotVisible({ label: 'in flight' }),
              dlq.metricApproximateNumberOfMessagesVisible({ label: 'dead-lettered' }),
            ],
            right: [queue.metricApproximateAgeOfOldestMessage({ label: 'oldest job age (s)' })],
          }),
          new GraphWidget({
            title: 'Workers',
            left: [
              fn.metric('ConcurrentExecutions', { statistic: 'Maximum', label: 'concurrent' }),
              fn.metricThrottles({ label: 'throttles' }),
              fn.metricErrors({ label: 'errors' }),
            ],
            right: [fn.metricDuration({ statistic: 'p95', label: 'duration p95' })],
          }),
        ],
        [
          new GraphWidget({
            title: 'Jobs',
            left: [
              metric(METRIC.jobsDone, 'Sum'),
              metric(METRIC.jobsFailed, 'Sum'),
              metric(METRIC.jobsSkipped, 'Sum'),
              metric(METRIC.leaseConflicts, 'Sum'),
              metric(METRIC.budgetRefusals, 'Sum'),
            ],
            right: [metric(METRIC.jobDuration, 'p50'), metric(METRIC.jobDuration, 'p95')],
          }),
          new SingleValueWidget({
            title: `Spend today against the ${props.budgetUsd} USD budget`,
            metrics: [
              spend,
              new MathExpression({
                expression: `100 * spend / ${props.budgetUsd}`,
                usingMetrics: { spend },
                label: '% of budget',
                period: Duration.days(1),
              }),
            ],
          }),
        ],
      ],
    });
  }
}
