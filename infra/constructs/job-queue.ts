import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/**
 * Days a job may wait on the queue: SQS deletes a message past its retention without
 * dead-lettering it, so the queue keeps jobs as long as SQS allows (14 days).
 */
export const JOB_RETENTION_DAYS = 14;

export interface JobQueueProps {
  /** Queue visibility timeout: six times the worker timeout. */
  readonly visibilityTimeout: Duration;
  /** Deliveries before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** How long a job may wait on the queue. @default 14 days (the maximum) */
  readonly retention?: Duration;
}

/**
 * The job queue and its dead-letter queue: SSE, TLS only, both keeping messages 14 days
 * (the most SQS allows). A dead letter keeps its first enqueue time (pitfall 7), so one
 * that waited long on the queue leaves the DLQ sooner: `fanout report` keeps the reasons.
 */
export class JobQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  /**
   * The priority lanes, one for each priority above the lowest: a job of that priority is
   * sent to the queue and copied to its lane, and a worker holding a lower job runs the
   * lanes' jobs first (README, "Priorities"). No event source reads them, so the worker count
   * stays the one event source's concurrency.
   */
  readonly lanes: { readonly high: Queue; readonly normal: Queue };

  constructor(scope: Construct, id: string, props: JobQueueProps) {
    super(scope, id);
    const retention = props.retention ?? Duration.days(JOB_RETENTION_DAYS);
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: retention,
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });
    const lane = (id: string) => {
      const queue = new Queue(this, id, {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: retention,
        visibilityTimeout: props.visibilityTimeout,
      });
      Validations.of(queue).acknowledge({
        id: 'AwsSolutions-SQS3',
        reason:
          "A lane holds copies: each job's own message is on the job queue, whose redrive policy sends it " +
          'to the dead-letter queue. A worker dead-letters a lane copy whose job fails and drops one it has ' +
          'received maxReceiveCount times, so a redrive policy here would put one job in the DLQ twice.',
      });
      return queue;
    };
    this.lanes = { high: lane('HighLane'), normal: lane('NormalLane') };
  }
}
