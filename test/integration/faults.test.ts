import { describe, expect, it } from 'vitest';
import { countingAgent, harness, issues } from '../scenarios/harness.js';
import { withFaults } from '../support/faults.js';

describe('fault injection through the state adapter', () => {
  it('an error when recording the outcome sends the job back, and it ends DONE once', async () => {
    const h = await harness({ visibilityTimeoutMs: 100, leaseMs: 200 });
    try {
      await h.send(issues(3));
      const { agent, runs } = countingAgent({ costMicros: 1000 });
      await h.drain({
        workers: 1,
        agent,
        state: (invocation) =>
          invocation === 1
            ? withFaults(h.state, [{ method: 'finishJob', at: 1, fault: { action: 'error' } }])
            : h.state,
      });
      const jobs = await h.state.listJobs(h.runId);
      expect(jobs.map((j) => j.status)).toEqual(['DONE', 'DONE', 'DONE']);
      // The first job's work was done (and paid) twice: the ledger shows both, its record one.
      expect(runs.get('acme/api#1')).toBe(2);
      expect(jobs[0]?.costMicros).toBe(1000);
      expect((await h.state.getRun(h.runId))?.spentMicros).toBe(4000);
    } finally {
      await h.close();
    }
  });

  it('a throttled lease call and a slow settle still give every job DONE once', async () => {
    const h = await harness({ visibilityTimeoutMs: 100, leaseMs: 2000 });
    try {
      await h.send(issues(2));
      const { agent, runs } = countingAgent({ costMicros: 1000 });
      await h.drain({
        workers: 1,
        agent,
        state: (invocation) =>
          invocation === 1
            ? withFaults(h.state, [
                { method: 'acquireLease', at: 1, fault: { action: 'throttle' } },
                { method: 'settle', at: 1, fault: { action: 'delay', ms: 300 } },
              ])
            : h.state,
      });
      expect((await h.state.listJobs(h.runId)).map((j) => j.status)).toEqual(['DONE', 'DONE']);
      expect([...runs.values()]).toEqual([1, 1]);
      expect(await h.state.getRun(h.runId)).toMatchObject({ spentMicros: 2000, reservedMicros: 0 });
    } finally {
      await h.close();
    }
  });
});
