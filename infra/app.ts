import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readSettings, SettingsError } from './config.js';
import { FanoutStack } from './fanout-stack.js';

const app = new App();
try {
  const settings = readSettings((key) => app.node.tryGetContext(key));
  new FanoutStack(app, app.node.tryGetContext('stackName') ?? 'Fanout', {
    settings,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
} catch (error) {
  if (error instanceof SettingsError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
// cdk-nag runs on every synth; a violation without an acknowledged reason stops it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
