import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { readSettings } from '../../infra/config.js';
import { FanoutStack } from '../../infra/fanout-stack.js';

/** The feature flags cdk.json sets, so tests synthesize what `cdk deploy` deploys. */
export const CDK_JSON_FLAGS = { '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true };

export function synthStack(context: Record<string, unknown> = {}, outdir?: string) {
  const app = new App({ context: { ...CDK_JSON_FLAGS, ...context }, ...(outdir ? { outdir } : {}) });
  const settings = readSettings((key) => app.node.tryGetContext(key));
  const stack = new FanoutStack(app, 'Fanout', { settings });
  return { app, stack, template: Template.fromStack(stack) };
}
