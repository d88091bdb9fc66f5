import { describe, expect, it } from 'vitest';
import { retryDelaySeconds } from '../../shared/domain/attempt.js';
import { FanoutError, isTransient, toFanoutError } from '../../shared/domain/errors.js';

const sdkError = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${name} happened`), { name, $metadata: {}, ...extra });

describe('transient or permanent, by the SDK and network signals', () => {
  it.each([
    ['DynamoDB throttling after the SDK retries', sdkError('ProvisionedThroughputExceededException')],
    ['Bedrock ModelTimeout', sdkError('ModelTimeoutException')],
    ['Bedrock InternalServer', sdkError('InternalServerException', { $fault: 'server' })],
    ['Bedrock ServiceUnavailable', sdkError('ServiceUnavailableException')],
    [
      'an S3 500 of a name the code does not know',
      sdkError('WeirdS3Thing', { $metadata: { httpStatusCode: 500 } }),
    ],
    ['the SDK says retryable', sdkError('Unknown', { $retryable: { throttling: false } })],
    ['a reset connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    [
      'a wrapped timeout',
      new Error('outer', { cause: Object.assign(new Error('t'), { name: 'TimeoutError' }) }),
    ],
  ])('%s is a retryable SERVICE_UNAVAILABLE', (_, error) => {
    expect(isTransient(error)).toBe(true);
    expect(toFanoutError(error)).toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      retryable: true,
      cause: error,
    });
  });

  it.each([
    [
      'AccessDenied',
      sdkError('AccessDeniedException', { $fault: 'client', $metadata: { httpStatusCode: 403 } }),
    ],
    ['a validation error', sdkError('ValidationException', { $metadata: { httpStatusCode: 400 } })],
    ['a plain bug', new TypeError('x is undefined')],
  ])('%s stays permanent', (_, error) => {
    expect(isTransient(error)).toBe(false);
    expect(toFanoutError(error, 'AGENT_FAILED')).toMatchObject({ code: 'AGENT_FAILED', retryable: false });
  });

  it('keeps a FanoutError as it is', () => {
    const error = new FanoutError('LEASE_LOST', 'gone', { retryable: true });
    expect(toFanoutError(error)).toBe(error);
  });
});

describe('retry backoff', () => {
  it('starts at 30 s, doubles per receive, stops at 15 min, and jitters within the upper half', () => {
    const at = (n: number, r: number) => retryDelaySeconds(n, { random: () => r });
    expect([at(1, 1), at(2, 1), at(3, 1), at(6, 1), at(20, 1)]).toEqual([30, 60, 120, 900, 900]);
    expect([at(1, 0), at(2, 0), at(20, 0)]).toEqual([15, 30, 450]);
  });
});
