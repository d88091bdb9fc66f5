/**
 * The policies of a synthesized stack, with their CloudFormation intrinsics resolved
 * against concrete names, so the IAM gate can evaluate real requests against exactly
 * what `cdk deploy` would create.
 */

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

export interface PolicyDocument {
  readonly Version?: string;
  readonly Statement: readonly Record<string, unknown>[];
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

/** The physical identity of one resource: what `Ref` and `Fn::GetAtt` give. */
interface Physical {
  readonly ref: string;
  readonly attrs: Record<string, string>;
}

/**
 * Names for the stack's resources: `physicalName(logicalId, type)` returns the name to
 * use (a table name, a queue name, a bucket name), or undefined for a generated one.
 */
export type PhysicalNames = (logicalId: string, type: string) => string | undefined;

function physicalOf(logicalId: string, type: string, name: string, endpoints: { sqs?: string }): Physical {
  const arn = (service: string, resource: string, region = REGION, account = ACCOUNT) =>
    `arn:aws:${service}:${region}:${account}:${resource}`;
  switch (type) {
    case 'AWS::DynamoDB::GlobalTable':
    case 'AWS::DynamoDB::Table':
      return { ref: name, attrs: { Arn: arn('dynamodb', `table/${name}`) } };
    case 'AWS::SQS::Queue':
      return {
        ref: `${endpoints.sqs ?? `https://sqs.${REGION}.amazonaws.com`}/${ACCOUNT}/${name}`,
        attrs: { Arn: arn('sqs', name), QueueName: name },
      };
    case 'AWS::S3::Bucket':
      return { ref: name, attrs: { Arn: `arn:aws:s3:::${name}`, DomainName: `${name}.s3.amazonaws.com` } };
    case 'AWS::SNS::Topic':
      return { ref: arn('sns', name), attrs: { TopicArn: arn('sns', name), TopicName: name } };
    case 'AWS::Logs::LogGroup':
      return { ref: name, attrs: { Arn: arn('logs', `log-group:${name}:*`) } };
    case 'AWS::IAM::Role':
      return {
        ref: name,
        attrs: { Arn: `arn:aws:iam::${ACCOUNT}:role/${name}`, RoleId: `AROA${logicalId}` },
      };
    case 'AWS::Lambda::Function':
      return { ref: name, attrs: { Arn: arn('lambda', `function:${name}`) } };
    default:
      return { ref: name, attrs: { Arn: arn('unknown', name) } };
  }
}

/** Resolves a template's intrinsics (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split). */
export class TemplateResolver {
  private readonly physical = new Map<string, Physical>();
  private readonly pseudo: Record<string, string> = {
    'AWS::Partition': 'aws',
    'AWS::Region': REGION,
    'AWS::AccountId': ACCOUNT,
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': 'Fanout',
    'AWS::NoValue': '',
  };

  constructor(
    readonly template: { Resources: Resources },
    names: PhysicalNames = () => undefined,
    endpoints: { sqs?: string } = {},
  ) {
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      const name = names(logicalId, resource.Type) ?? logicalId.toLowerCase();
      this.physical.set(logicalId, physicalOf(logicalId, resource.Type, name, endpoints));
    }
  }

  of(logicalId: string): Physical {
    const found = this.physical.get(logicalId);
    if (!found) throw new Error(`no resource ${logicalId} in the template`);
    return found;
  }

  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [key, arg] = entries[0] ?? [];
    if (entries.length === 1 && key !== undefined) {
      if (key === 'Ref') return this.pseudo[arg as string] ?? this.of(arg as string).ref;
      if (key === 'Fn::GetAtt') {
        const [id, attr] = Array.isArray(arg) ? (arg as string[]) : (arg as string).split('.');
        const got = this.of(id as string).attrs[attr as string];
        if (got === undefined) throw new Error(`no attribute ${attr} of ${id}`);
        return got;
      }
      if (key === 'Fn::Join') {
        const [sep, parts] = arg as [string, unknown[]];
        return (this.resolve(parts) as unknown[]).join(sep);
      }
      if (key === 'Fn::Select') {
        const [index, list] = arg as [number, unknown];
        return (this.resolve(list) as unknown[])[Number(index)];
      }
      if (key === 'Fn::Split') {
        const [sep, text] = arg as [string, unknown];
        return String(this.resolve(text)).split(sep);
      }
      if (key === 'Fn::Sub') {
        const [text, vars] = Array.isArray(arg)
          ? (arg as [string, Record<string, unknown>])
          : [arg as string, {}];
        return text.replace(/\$\{([^}]+)\}/g, (_, name: string) => {
          if (name in vars) return String(this.resolve(vars[name]));
          if (name in this.pseudo) return this.pseudo[name] as string;
          const [id, attr] = name.split('.');
          return attr ? (this.of(id as string).attrs[attr] as string) : this.of(id as string).ref;
        });
      }
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v)]));
  }

  /** The logical id of the one resource of `type` whose id matches `pattern`. */
  find(type: string, pattern: RegExp): string {
    const ids = Object.entries(this.template.Resources)
      .filter(([id, r]) => r.Type === type && pattern.test(id))
      .map(([id]) => id);
    if (ids.length !== 1)
      throw new Error(`expected one ${type} matching ${pattern}, found ${ids.join(', ')}`);
    return ids[0] as string;
  }

  /** Every identity policy attached to a role, resolved. */
  rolePolicies(roleLogicalId: string): PolicyDocument[] {
    const docs: PolicyDocument[] = [];
    for (const resource of Object.values(this.template.Resources)) {
      if (resource.Type !== 'AWS::IAM::Policy') continue;
      const roles = (resource.Properties?.Roles as { Ref: string }[] | undefined) ?? [];
      if (!roles.some((role) => role.Ref === roleLogicalId)) continue;
      docs.push(this.resolve(resource.Properties?.PolicyDocument) as PolicyDocument);
    }
    return docs;
  }

  /** Resource policies by the ARN they protect: buckets, queues, topics. */
  resourcePolicies(): Map<string, PolicyDocument> {
    const byArn = new Map<string, PolicyDocument[]>();
    const add = (arn: string, doc: PolicyDocument) => byArn.set(arn, [...(byArn.get(arn) ?? []), doc]);
    for (const resource of Object.values(this.template.Resources)) {
      const p = resource.Properties ?? {};
      const doc = () => this.resolve(p.PolicyDocument) as PolicyDocument;
      if (resource.Type === 'AWS::S3::BucketPolicy') add(`arn:aws:s3:::${this.resolve(p.Bucket)}`, doc());
      if (resource.Type === 'AWS::SQS::QueuePolicy') {
        for (const url of this.resolve(p.Queues) as string[]) {
          const name = url.split('/').at(-1) as string;
          add(`arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`, doc());
        }
      }
      if (resource.Type === 'AWS::SNS::TopicPolicy') {
        for (const arn of this.resolve(p.Topics) as string[]) add(arn, doc());
      }
    }
    return new Map(
      [...byArn].map(([arn, docs]) => [
        arn,
        { Version: '2012-10-17', Statement: docs.flatMap((d) => d.Statement) },
      ]),
    );
  }
}
