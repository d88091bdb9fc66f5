import { describe, expect, it } from 'vitest';
import { planFor, type SimulateOptions } from '../../shared/agents/simulate.js';

const options: SimulateOptions = {
  durationMs: { min: 100, max: 900 },
  failRate: 0.25,
  costMicros: { min: 1000, max: 5000 },
  seed: 7,
};

describe('simulate agent plan', () => {
  it('is a function of the seed and the job key alone', () => {
    expect(planFor('a/b#1', options)).toEqual(planFor('a/b#1', options));
    expect(planFor('a/b#1', options)).not.toEqual(planFor('a/b#1', { ...options, seed: 8 }));
  });

  it('stays within its ranges and fails about the share asked for', () => {
    const plans = Array.from({ length: 2000 }, (_, i) => planFor(`a/b#${i}`, options));
    for (const plan of plans) {
      expect(plan.durationMs).toBeGreaterThanOrEqual(100);
      expect(plan.durationMs).toBeLessThanOrEqual(900);
      expect(plan.costMicros).toBeGreaterThanOrEqual(1000);
      expect(plan.costMicros).toBeLessThanOrEqual(5000);
    }
    const failures = plans.filter((plan) => plan.fails).length / plans.length;
    expect(failures).toBeGreaterThan(0.22);
    expect(failures).toBeLessThan(0.28);
  });
});
