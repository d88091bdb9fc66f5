import { Duration, Size } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  DockerImageCode,
  DockerImageFunction,
  type Function as LambdaFunction,
  LoggingFormat,
  Runtime,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * Lambda's price of a GB-second (us-east-1, the first 6 billion GB-seconds a month), in
 * micro-USD: Arm and x86. The worker reserves and settles each command's time at this rate.
 */
export const GB_SECOND_MICROS = { arm64: 13.3334, x86_64: 16.6667 } as const;

export interface SandboxFunctionProps {
  /** @default 2048 */
  readonly memoryMb?: number;
  /**
   * A Dockerfile (relative to the project's root, which is its build context) whose image
   * holds the toolchains the repositories' tests need, and the sandbox handler. Building it
   * needs Docker where `cdk deploy` runs. @default the Node.js runtime, as a zip
   */
  readonly image?: string;
  /** @default one month */
  readonly logRetention?: RetentionDays;
}

/**
 * The sandbox: a function that runs one of an agent's commands on a job's files, reached
 * through presigned URLs. Its role may write its own logs and nothing else; its environment
 * holds no variable at all (no secret, no table, bucket or queue name).
 */
export class SandboxFunction extends Construct {
  readonly function: LambdaFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  /** What a second of it costs, in micro-USD (its memory at its architecture's GB-second price). */
  readonly microsPerSecond: number;

  constructor(scope: Construct, id: string, props: SandboxFunctionProps = {}) {
    super(scope, id);
    const memoryMb = props.memoryMb ?? 2048;
    this.logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention ?? RetentionDays.ONE_MONTH });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'The fanout sandbox: writes its own logs, nothing else',
    });
    this.logGroup.grantWrite(this.role);
    const common = {
      role: this.role,
      memorySize: memoryMb,
      // The commands' files: a repository, its dependencies and builds.
      ephemeralStorageSize: Size.gibibytes(4),
      // A command's time limit (at most 10 minutes) and the copying in and out.
      timeout: Duration.minutes(15),
      loggingFormat: LoggingFormat.JSON,
      logGroup: this.logGroup,
    };
    if (props.image) {
      this.function = new DockerImageFunction(this, 'Function', {
        ...common,
        architecture: Architecture.X86_64,
        code: DockerImageCode.fromImageAsset(ROOT, {
          file: props.image,
          platform: Platform.LINUX_AMD64,
          // The build context: what the image's build stage bundles the handler from.
          exclude: ['*', '!package.json', '!package-lock.json', '!shared', '!functions', '!infra'],
        }),
      });
      this.microsPerSecond = Math.ceil((memoryMb / 1024) * GB_SECOND_MICROS.x86_64);
    } else {
      this.function = new NodejsFunction(this, 'Function', {
        ...common,
        entry: `${ROOT}functions/sandbox/handler.ts`,
        projectRoot: ROOT,
        depsLockFilePath: `${ROOT}package-lock.json`,
        runtime: Runtime.NODEJS_24_X,
        architecture: Architecture.ARM_64,
        bundling: {
          format: OutputFormat.ESM,
          target: 'node24',
          minify: true,
          forceDockerBundling: false,
          externalModules: [],
          banner:
            "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        },
      });
      this.microsPerSecond = Math.ceil((memoryMb / 1024) * GB_SECOND_MICROS.arm64);
    }
  }
}
