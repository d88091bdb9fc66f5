import { describe, expect, it } from 'vitest';
import { LiveTable, shorten } from '../../cli/live-table.js';

function capture(tty: boolean) {
  let text = '';
  const write = (chunk: string) => {
    text += chunk;
    return true;
  };
  const out = { write } as unknown as NodeJS.WriteStream;
  return { table: new LiveTable(out, tty), text: () => text };
}

describe('the live table after a worker crash', () => {
  it('says which jobs wait for a dead worker’s lease and counts down to it', async () => {
    const { table, text } = capture(true);
    await table.onEvent({ type: 'crash', workerId: 'worker-01', pid: 1, reason: 'killed' });
    await table.onEvent({
      type: 'worker',
      workerId: 'worker-02',
      pid: 2,
      event: { type: 'deferred', jobKey: 'acme/api#1', reason: 'lease-held', until: Date.now() + 12_000 },
    });
    expect(text()).toMatch(/1 job waiting for another worker's lease to end \(next in 1[12]\.\d\ds\)/);
    await table.onEvent({
      type: 'worker',
      workerId: 'worker-02',
      pid: 2,
      event: { type: 'started', jobKey: 'acme/api#1', title: 't', attempt: 2 },
    });
    const lastFrame = text().slice(text().lastIndexOf('\x1b[2Kworker '));
    expect(lastFrame).not.toMatch(/waiting for another worker's lease/);
  });

  it('prints plain lines, with the reason a job went back and when a lease ends, off a terminal', async () => {
    const { table, text } = capture(false);
    await table.onEvent({
      type: 'worker',
      workerId: 'worker-01',
      pid: 1,
      event: {
        type: 'returned',
        jobKey: 'acme/api#2',
        reason: 'AGENT_FAILED',
        message: 'GitHub could not be reached',
      },
    });
    await table.onEvent({
      type: 'worker',
      workerId: 'worker-02',
      pid: 2,
      event: { type: 'deferred', jobKey: 'acme/api#1', reason: 'lease-held', until: Date.now() + 5000 },
    });
    expect(text()).toContain(
      'worker-01 returned acme/api#2 to the queue (AGENT_FAILED: GitHub could not be reached)',
    );
    expect(text()).toMatch(
      /worker-02 deferred acme\/api#1: another worker holds its lease, which ends in [45]\.\d\ds/,
    );
  });

  it('keeps its columns with a long job key, cutting it in the middle so the number shows', async () => {
    expect(shorten('a-very-long-organisation/a-very-long-repository#123', 20)).toBe('a-very-lo…sitory#123');
    const { table, text } = capture(true);
    await table.onEvent({
      type: 'worker',
      workerId: 'worker-01',
      pid: 1,
      event: {
        type: 'started',
        jobKey: 'a-very-long-organisation/a-very-long-repository#123',
        title: 't',
        attempt: 1,
      },
    });
    const row =
      text()
        .split('\n')
        .find((line) => line.includes('worker-01')) ?? '';
    expect(row.replace('\x1b[2K', '').slice(11 + 12 + 32)).toMatch(/^0 +\$0\.00/);
  });
});
