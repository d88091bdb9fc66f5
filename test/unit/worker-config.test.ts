import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../shared/config/worker-config.js';

const good = {
  FANOUT_TABLE_NAME: 'fanout-state',
  FANOUT_BUCKET_NAME: 'fanout-workspaces',
  FANOUT_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/jobs',
  FANOUT_DLQ_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/jobs-dlq',
  FANOUT_MAX_RECEIVE_COUNT: '5',
};

describe('worker configuration', () => {
  it('reads the stack environment with defaults', () => {
    expect(loadWorkerConfig(good)).toMatchObject({
      tableName: 'fanout-state',
      maxReceiveCount: 5,
      leaseMs: 60_000,
      scratchDir: '/tmp',
      s3ForcePathStyle: false,
      agent: { kind: 'simulate' },
    });
  });

  it('names every bad variable at once', () => {
    expect(() =>
      loadWorkerConfig({
        ...good,
        FANOUT_QUEUE_URL: 'jobs',
        FANOUT_MAX_RECEIVE_COUNT: '0',
        FANOUT_AGENT: '{nope',
        FANOUT_TABLE_NAME: undefined,
      }),
    ).toThrowError(
      expect.objectContaining({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(
          /FANOUT_TABLE_NAME[\s\S]*FANOUT_QUEUE_URL: must be the job queue URL[\s\S]*FANOUT_MAX_RECEIVE_COUNT[\s\S]*FANOUT_AGENT: is not JSON/,
        ),
      }),
    );
  });
});
