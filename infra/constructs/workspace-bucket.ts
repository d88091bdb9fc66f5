import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface WorkspaceBucketProps {
  /** Days before workspace objects under `runs/` expire. @default 30 */
  readonly retentionDays?: number;
}

/** Job workspaces, one prefix per job: private, encrypted, TLS only, expiring. */
export class WorkspaceBucket extends Construct {
  readonly bucket: Bucket;
  readonly accessLogs: Bucket;

  constructor(scope: Construct, id: string, props: WorkspaceBucketProps = {}) {
    super(scope, id);
    this.accessLogs = new Bucket(this, 'AccessLogs', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = new Bucket(this, 'Bucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'workspaces/',
      lifecycleRules: [
        { prefix: 'runs/', expiration: Duration.days(props.retentionDays ?? 30) },
        { abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      // Workspaces hold agents' work; a stack deletion must not take them without asking.
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
