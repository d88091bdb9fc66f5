/**
 * An IAM gate in front of the embedded engines. The emulators enforce no IAM; AWS
 * refuses every call the caller's policies do not allow. The gate reads each request
 * as AWS would (its action, the ARN it touches, its condition keys), evaluates it with
 * an IAM policy simulator against the synthesized template's policies (the caller's
 * identity policies and the resource's policy), answers AccessDenied in the service's
 * own shape where AWS would, and forwards the rest unchanged.
 *
 * AWS rules it enforces, beyond plain evaluation:
 * - S3 answers 403 (not 404) for a missing key to a caller without s3:ListBucket on the
 *   bucket, evaluated in the GetObject's context (which carries no s3:prefix).
 * - SQS batch calls are authorized as their single actions (SendMessageBatch is sqs:SendMessage).
 * - Converse is bedrock:InvokeModel; through an inference profile it needs the profile
 *   and the foundation model in every Region the profile may route to.
 * - Requests travel over TLS on AWS (aws:SecureTransport is true).
 * - A presigned S3 URL is authorized as its signer, whoever sends it.
 * - Invoke is lambda:InvokeFunction on the function's unqualified ARN.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { parseModelId } from '../../shared/agents/model-ids.js';
import { listenOnLoopback } from './loopback.js';
import { ACCOUNT, type PolicyDocument, REGION } from './template-policies.js';

export type GatedService = 'dynamodb' | 'sqs' | 's3' | 'secretsmanager' | 'bedrock' | 'lambda';

/** Who calls: a role's (or an operator's) identity policies. */
export interface Caller {
  readonly arn: string;
  readonly policies: readonly PolicyDocument[];
}

export interface AuthorizationRequest {
  readonly action: string;
  readonly resource: string;
  readonly context?: Record<string, string>;
}

export interface Decision extends AuthorizationRequest {
  readonly caller: string;
  readonly allowed: boolean;
}

/** The policies the gate evaluates against, and every decision it made. */
export class IamWorld {
  readonly decisions: Decision[] = [];

  constructor(private readonly resourcePolicies: ReadonlyMap<string, PolicyDocument>) {}

  private resourcePolicyFor(resource: string): PolicyDocument | undefined {
    if (resource.startsWith('arn:aws:s3:::')) {
      return this.resourcePolicies.get(`arn:aws:s3:::${resource.slice(13).split('/')[0]}`);
    }
    return this.resourcePolicies.get(resource);
  }

  /** Evaluates one request as AWS would; records the decision. */
  async authorize(caller: Caller, request: AuthorizationRequest, record = true): Promise<boolean> {
    const resourcePolicy = this.resourcePolicyFor(request.resource);
    const simulation: Simulation = {
      identityPolicies: caller.policies.map((policy, i) => ({ name: `p${i}`, policy: policy as never })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy: resourcePolicy as never } : {}),
      request: {
        action: request.action,
        principal: caller.arn,
        resource: { accountId: ACCOUNT, resource: request.resource },
        contextVariables: { 'aws:SecureTransport': 'true', ...request.context },
      },
    } as Simulation;
    const result = (await runSimulation(simulation, {})) as { overallResult?: string; errors?: unknown };
    if (result.errors) throw new Error(`IAM simulation failed: ${JSON.stringify(result.errors)}`);
    const allowed = result.overallResult === 'Allowed';
    if (record) this.decisions.push({ ...request, caller: caller.arn, allowed });
    return allowed;
  }

  denied(): Decision[] {
    return this.decisions.filter((d) => !d.allowed);
  }

  /** The actions a caller was allowed, each once. */
  actionsOf(callerArn: string): Set<string> {
    return new Set(this.decisions.filter((d) => d.caller === callerArn && d.allowed).map((d) => d.action));
  }
}

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

const SQS_ACTIONS: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** What AWS would authorize for one HTTP request to the service. */
function requestsFor(
  service: GatedService,
  method: string,
  url: URL,
  headers: IncomingMessage['headers'],
  body: Buffer,
): AuthorizationRequest[] {
  const target = String(headers['x-amz-target'] ?? '');
  const json = () => JSON.parse(body.toString('utf8') || '{}') as Record<string, string>;
  switch (service) {
    case 'dynamodb': {
      const operation = target.split('.')[1] ?? '';
      const table = (name: string) => `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;
      // A batch call names its tables in RequestItems, and AWS authorizes it on each of them.
      if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
        const tables = Object.keys((json() as unknown as { RequestItems?: object }).RequestItems ?? {});
        return tables.map((name) => ({ action: `dynamodb:${operation}`, resource: table(name) }));
      }
      return [{ action: `dynamodb:${operation}`, resource: table(String(json().TableName)) }];
    }
    case 'sqs': {
      const operation = target.split('.')[1] ?? '';
      const name = String(json().QueueUrl ?? '')
        .split('/')
        .at(-1);
      return [
        {
          action: `sqs:${SQS_ACTIONS[operation] ?? operation}`,
          resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`,
        },
      ];
    }
    case 'secretsmanager': {
      const operation = target.split('.')[1] ?? '';
      // A secret's ARN ends in a dash and six random characters.
      return [
        {
          action: `secretsmanager:${operation}`,
          resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${json().SecretId}-AbCdEf`,
        },
      ];
    }
    case 'bedrock': {
      const match = /^\/model\/([^/]+)\/converse$/.exec(url.pathname);
      if (!match) return [{ action: 'bedrock:Unknown', resource: '*' }];
      const model = parseModelId(decodeURIComponent(match[1] as string));
      if (!model.geography) {
        return [
          {
            action: 'bedrock:InvokeModel',
            resource: `arn:aws:bedrock:${REGION}::foundation-model/${model.id}`,
          },
        ];
      }
      const profileArn = `arn:aws:bedrock:${REGION}:${ACCOUNT}:inference-profile/${model.id}`;
      // Any Region of the profile may serve the call: each must be allowed.
      const regions = model.destinationRegions.includes('*') ? ['us-east-1', ''] : model.destinationRegions;
      return [
        { action: 'bedrock:InvokeModel', resource: profileArn },
        ...regions.map((region) => ({
          action: 'bedrock:InvokeModel',
          resource: `arn:aws:bedrock:${region}::foundation-model/${model.baseId}`,
          context: { 'bedrock:InferenceProfileArn': profileArn },
        })),
      ];
    }
    case 'lambda': {
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(url.pathname);
      const name = decodeURIComponent(match?.[1] ?? 'unknown');
      return [
        { action: 'lambda:InvokeFunction', resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}` },
      ];
    }
    case 's3': {
      // Path style: /bucket/key
      const [, bucket = '', ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const bucketArn = `arn:aws:s3:::${bucket}`;
      if (!key) {
        if (method === 'POST' && url.searchParams.has('delete')) {
          return [{ action: 's3:DeleteObject', resource: `${bucketArn}/*` }];
        }
        const prefix = url.searchParams.get('prefix');
        return [
          {
            action: 's3:ListBucket',
            resource: bucketArn,
            ...(prefix !== null ? { context: { 's3:prefix': prefix } } : {}),
          },
        ];
      }
      const action = { GET: 'GetObject', HEAD: 'GetObject', PUT: 'PutObject', DELETE: 'DeleteObject' }[
        method
      ];
      return [{ action: `s3:${action ?? method}`, resource: `${bucketArn}/${key}` }];
    }
  }
}

function denial(service: GatedService, request: AuthorizationRequest, caller: Caller) {
  const message = `User: ${caller.arn} is not authorized to perform: ${request.action} on resource: ${request.resource}`;
  switch (service) {
    case 's3':
      return {
        status: 403,
        headers: { 'content-type': 'application/xml' },
        body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`,
      };
    case 'sqs':
      return {
        status: 403,
        headers: {
          'content-type': 'application/x-amz-json-1.0',
          'x-amzn-query-error': 'AccessDenied;Sender',
        },
        body: JSON.stringify({ __type: 'com.amazonaws.sqs#AccessDenied', message }),
      };
    case 'bedrock':
    case 'lambda':
      return {
        status: 403,
        headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException' },
        body: JSON.stringify({ message }),
      };
    default:
      return {
        status: 400,
        headers: { 'content-type': 'application/x-amz-json-1.0' },
        body: JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message }),
      };
  }
}

export interface Gate {
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts a gate for one service on a free loopback port. `caller` is read per request,
 * so one gate can serve the worker and, later, the operator.
 */
export async function startGate(options: {
  service: GatedService;
  upstream: string;
  world: IamWorld;
  caller: () => Caller;
}): Promise<Gate> {
  const upstream = new URL(options.upstream);
  const server: Server = createServer((req, res) => {
    readBody(req)
      .then(async (body) => {
        const url = new URL(req.url ?? '/', 'http://gate');
        const caller = options.caller();
        const requests = requestsFor(options.service, req.method ?? 'GET', url, req.headers, body);
        for (const request of requests) {
          if (!(await options.world.authorize(caller, request))) {
            const answer = denial(options.service, request, caller);
            res.writeHead(answer.status, answer.headers);
            res.end(answer.body);
            return;
          }
        }
        const forwarded = httpRequest(
          {
            hostname: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (answer) => {
            const first = requests[0];
            const missingObject =
              options.service === 's3' && answer.statusCode === 404 && first?.action === 's3:GetObject';
            if (!missingObject) {
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              answer.pipe(res);
              return;
            }
            // S3's rule: a missing key is 404 only to a caller allowed s3:ListBucket on the bucket.
            answer.resume();
            const bucketArn = (first.resource.match(/^arn:aws:s3:::[^/]+/) as RegExpMatchArray)[0];
            options.world
              .authorize(caller, { action: 's3:ListBucket', resource: bucketArn }, false)
              .then((mayList) => {
                const reply = mayList
                  ? {
                      status: 404,
                      headers: { 'content-type': 'application/xml' },
                      body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>',
                    }
                  : denial('s3', first, caller);
                res.writeHead(reply.status, reply.headers);
                res.end(req.method === 'HEAD' ? undefined : reply.body);
              }, failed(res));
          },
        );
        forwarded.on('error', failed(res));
        forwarded.end(body);
      })
      .catch(failed(res));
  });
  return listenOnLoopback(server);
}

const failed = (res: import('node:http').ServerResponse) => (error: unknown) => {
  if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
  res.end(`iam gate: ${String(error)}`);
};
