import { describe, expect, it } from 'vitest';
import { FanoutError } from '../../shared/domain/errors.js';
import { parseDuration, parseDurationRange, parseUsdRange } from '../../shared/domain/units.js';

describe('durations', () => {
  it('reads ms, s, m and ranges', () => {
    expect(parseDurationRange('250ms')).toEqual({ min: 250, max: 250 });
    expect(parseDurationRange('1.5s')).toEqual({ min: 1500, max: 1500 });
    expect(parseDurationRange('1s-3s')).toEqual({ min: 1000, max: 3000 });
    expect(parseDuration('2m', '--timeout')).toBe(120_000);
  });

  it('names the flag and a good value when the text is wrong', () => {
    expect(() => parseDurationRange('fast')).toThrow(/--duration: "fast" is not a duration; use e.g. 250ms/);
    expect(() => parseDurationRange('3s-1s')).toThrow(/runs backwards/);
    expect(() => parseDuration('1s-2s', '--timeout')).toThrow(/--timeout: give one duration/);
  });
});

describe('dollars', () => {
  it('counts in whole micro-dollars', () => {
    expect(parseUsdRange('0.05')).toEqual({ min: 50_000, max: 50_000 });
    expect(parseUsdRange('0.01-0.10')).toEqual({ min: 10_000, max: 100_000 });
  });

  it('refuses negative and malformed amounts with INVALID_INPUT', () => {
    for (const bad of ['-1', 'abc', '', '0.1-0.01', '1-2-3']) {
      const error = (() => {
        try {
          parseUsdRange(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(FanoutError);
      expect((error as FanoutError).code).toBe('INVALID_INPUT');
    }
  });
});
