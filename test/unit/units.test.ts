import { describe, expect, it } from 'vitest';
import { FanoutError } from '../../shared/domain/errors.js';
import { parseDuration, parseDurationRange, parseUsdRange, plural } from '../../shared/domain/units.js';

describe('durations', () => {
  it('reads ms, s, m and ranges', () => {
    expect(parseDurationRange('250ms', '--duration')).toEqual({ min: 250, max: 250 });
    expect(parseDurationRange('1.5s', '--duration')).toEqual({ min: 1500, max: 1500 });
    expect(parseDurationRange('1s-3s', '--duration')).toEqual({ min: 1000, max: 3000 });
    expect(parseDuration('2m', '--timeout')).toBe(120_000);
  });

  it('names the flag and a good value when the text is wrong', () => {
    expect(() => parseDurationRange('fast', '--duration')).toThrow(
      /--duration: "fast" is not a duration; use e.g. 250ms/,
    );
    expect(() => parseDurationRange('3s-1s', '--duration')).toThrow(/runs backwards/);
    expect(() => parseDuration('1s-2s', '--timeout')).toThrow(/--timeout: give one duration/);
  });

  it("bounds every duration, so none overflows Node's timers", () => {
    expect(() => parseDurationRange('9999999m', '--duration')).toThrow(
      /--duration: "9999999m" is longer than the 24h it may be/,
    );
    expect(() => parseDuration('25000m', '--timeout')).toThrow(/--timeout: "25000m" is longer than the 24h/);
    expect(parseDuration('1440m', '--timeout')).toBe(24 * 3600_000);
  });
});

describe('words', () => {
  it('says 1 job and 2 jobs', () => {
    expect([plural(0, 'job'), plural(1, 'job'), plural(2, 'job')]).toEqual(['0 jobs', '1 job', '2 jobs']);
  });
});

describe('dollars', () => {
  it('counts in whole micro-dollars', () => {
    expect(parseUsdRange('0.05', '--cost-usd')).toEqual({ min: 50_000, max: 50_000 });
    expect(parseUsdRange('0.01-0.10', '--cost-usd')).toEqual({ min: 10_000, max: 100_000 });
  });

  it('refuses negative and malformed amounts with INVALID_INPUT', () => {
    for (const bad of ['-1', 'abc', '', '0.1-0.01', '1-2-3']) {
      const error = (() => {
        try {
          parseUsdRange(bad, '--cost-usd');
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(FanoutError);
      expect((error as FanoutError).code).toBe('INVALID_INPUT');
    }
  });
});
