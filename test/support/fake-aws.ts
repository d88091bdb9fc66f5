/**
 * Loopback stand-ins for the AWS services no embedded engine covers: Secrets Manager's
 * GetSecretValue, Bedrock Runtime's Converse and Lambda's Invoke. Each answers on the wire
 * as the service does, so the real SDK clients (and the bundled worker) talk to them.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { listenOnLoopback } from './loopback.js';

const body = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });

/**
 * Secrets Manager (JSON protocol): GetSecretValue of the secrets held. A list of values
 * is a rotation: each read gets the next, and the last one stays.
 */
export async function startFakeSecrets(secrets: Map<string, string | readonly string[]>) {
  const reads: string[] = [];
  const served = new WeakMap<readonly string[], number>();
  const server = createServer((req, res) => {
    body(req).then((text) => {
      const { SecretId } = JSON.parse(text || '{}') as { SecretId: string };
      reads.push(SecretId);
      const held = secrets.get(SecretId);
      let value: string | undefined;
      if (typeof held === 'string' || held === undefined) value = held;
      else {
        const n = served.get(held) ?? 0;
        served.set(held, n + 1);
        value = held[Math.min(n, held.length - 1)];
      }
      res.writeHead(value === undefined ? 400 : 200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(
        JSON.stringify(
          value === undefined
            ? {
                __type: 'ResourceNotFoundException',
                message: "Secrets Manager can't find the specified secret.",
              }
            : {
                ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${SecretId}-AbCdEf`,
                Name: SecretId,
                SecretString: value,
              },
        ),
      );
    });
  });
  return { ...(await listenOnLoopback(server)), reads };
}

export interface FakeTurn {
  readonly content: readonly Record<string, unknown>[];
  readonly usage: { readonly inputTokens: number; readonly outputTokens: number };
}

/** A conversation whose issue carries this text is answered 503 ServiceUnavailable, every time. */
export const UNAVAILABLE_MARKER = '[fake-bedrock: unavailable]';

/**
 * Bedrock Runtime's Converse (POST /model/{modelId}/converse): answers each conversation
 * by its position (the assistant turns it already has), as a real model continues one.
 */
export async function startFakeBedrock(turns: readonly FakeTurn[]) {
  const calls: { modelId: string; messages: unknown[] }[] = [];
  const server = createServer((req, res) => {
    body(req).then((text) => {
      const match = /^\/model\/([^/]+)\/converse$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      const request = JSON.parse(text || '{}') as { messages: { role: string }[] };
      if (!match) {
        res.writeHead(404, { 'x-amzn-errortype': 'UnknownOperationException' });
        res.end('{}');
        return;
      }
      calls.push({ modelId: decodeURIComponent(match[1] as string), messages: request.messages });
      if (text.includes(UNAVAILABLE_MARKER)) {
        res.writeHead(503, {
          'content-type': 'application/json',
          'x-amzn-errortype': 'ServiceUnavailableException',
        });
        res.end(JSON.stringify({ message: 'Bedrock is unavailable (fake)' }));
        return;
      }
      const turn = turns[request.messages.filter((m) => m.role === 'assistant').length];
      if (!turn) {
        res.writeHead(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'ValidationException' });
        res.end(JSON.stringify({ message: 'the fake model has no more turns' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          output: { message: { role: 'assistant', content: turn.content } },
          stopReason: turn.content.some((c) => 'toolUse' in c) ? 'tool_use' : 'end_turn',
          usage: { ...turn.usage, totalTokens: turn.usage.inputTokens + turn.usage.outputTokens },
          metrics: { latencyMs: 1 },
        }),
      );
    });
  });
  return { ...(await listenOnLoopback(server)), calls };
}

/**
 * Lambda's Invoke (RequestResponse) for one function: each invocation runs the function's
 * bundle in a child Node process with nothing in its environment but PATH (its template
 * sets none), and a scratch folder of its own standing in for /tmp, kept between
 * invocations as a reused execution environment keeps /tmp. A handler that throws is
 * answered as Lambda answers it: 200 with X-Amz-Function-Error and the error as the payload.
 */
export async function startFakeLambda(functions: Record<string, { bundle: string; scratch: string }>) {
  const invocations: { functionName: string; payload: unknown }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url?.split('?')[0] ?? '');
      const fn = match ? functions[decodeURIComponent(match[1] as string)] : undefined;
      if (!match || !fn) {
        res.writeHead(404, {
          'content-type': 'application/json',
          'x-amzn-errortype': 'ResourceNotFoundException',
        });
        res.end(JSON.stringify({ message: `Function not found: ${req.url}` }));
        return;
      }
      const payload = Buffer.concat(chunks).toString('utf8');
      invocations.push({
        functionName: decodeURIComponent(match[1] as string),
        payload: JSON.parse(payload),
      });
      const runner = `const { handler } = await import(${JSON.stringify(fn.bundle)});
        try { process.stdout.write('RESULT ' + JSON.stringify(await handler(JSON.parse(process.argv[1])))); }
        catch (error) { process.stdout.write('ERROR ' + JSON.stringify({ errorType: error.name, errorMessage: error.message })); }`;
      execFile(
        process.execPath,
        ['--input-type=module', '-e', runner, payload],
        { env: { PATH: process.env.PATH, FANOUT_SANDBOX_SCRATCH: fn.scratch }, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout) => {
          const out = String(stdout);
          if (error && !out) {
            res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled' });
            res.end(JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage: String(error) }));
            return;
          }
          const failed = out.startsWith('ERROR ');
          res.writeHead(200, {
            'content-type': 'application/json',
            ...(failed ? { 'x-amz-function-error': 'Unhandled' } : {}),
          });
          res.end(out.slice(failed ? 'ERROR '.length : 'RESULT '.length));
        },
      );
    });
  });
  return { ...(await listenOnLoopback(server)), invocations };
}
