import { FanoutError } from './errors.js';

/** Money is counted in integer micro-dollars so that sums are exact. */
export const MICROS_PER_USD = 1_000_000;
export const usdToMicros = (usd: number): number => Math.round(usd * MICROS_PER_USD);
export const microsToUsd = (micros: number): number => micros / MICROS_PER_USD;
export const formatUsd = (micros: number): string =>
  `$${microsToUsd(micros).toFixed(micros % 10_000 === 0 ? 2 : 4)}`;

export interface Range {
  readonly min: number;
  readonly max: number;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/** The longest duration fanout takes: a day (Node's timers overflow past 24.8 days). */
export const MAX_DURATION_MS = 24 * 3600_000;

function parseOneDuration(text: string, what: string, maxMs: number): number {
  const match = DURATION.exec(text.trim());
  if (!match) {
    throw new FanoutError(
      'INVALID_INPUT',
      `${what}: "${text}" is not a duration; use e.g. 250ms, 1s, 1.5s or 2m`,
    );
  }
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
  if (ms > maxMs) {
    throw new FanoutError(
      'INVALID_INPUT',
      `${what}: "${text}" is longer than the ${formatMs(maxMs)} it may be`,
    );
  }
  return ms;
}

/** Parses `1s`, `250ms`, `2m` or a range `1s-3s` into milliseconds. */
export function parseDurationRange(text: string, what: string, maxMs = MAX_DURATION_MS): Range {
  const [low, high, ...rest] = text.split('-');
  if (low === undefined || rest.length > 0) {
    throw new FanoutError('INVALID_INPUT', `${what}: "${text}" is not a duration or a range like 1s-3s`);
  }
  const min = parseOneDuration(low, what, maxMs);
  const max = high === undefined ? min : parseOneDuration(high, what, maxMs);
  if (max < min) throw new FanoutError('INVALID_INPUT', `${what}: the range "${text}" runs backwards`);
  return { min, max };
}

export function parseDuration(text: string, what: string, maxMs = MAX_DURATION_MS): number {
  const range = parseDurationRange(text, what, maxMs);
  if (range.min !== range.max)
    throw new FanoutError('INVALID_INPUT', `${what}: give one duration, not a range`);
  return range.min;
}

/** Parses `0.05` or a range `0.01-0.10` of US dollars into micro-dollars. */
export function parseUsdRange(text: string, what: string): Range {
  const parts = text.split('-');
  const values = parts.map((part) => Number(part.trim()));
  if (
    parts.length > 2 ||
    values.some((v) => !Number.isFinite(v) || v < 0) ||
    parts.some((p) => p.trim() === '')
  ) {
    throw new FanoutError(
      'INVALID_INPUT',
      `${what}: "${text}" is not an amount >= 0 or a range like 0.01-0.10`,
    );
  }
  const [min = 0, max = min] = values.map(usdToMicros);
  if (max < min) throw new FanoutError('INVALID_INPUT', `${what}: the range "${text}" runs backwards`);
  return { min, max };
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 3600_000 && ms % 3600_000 === 0) return `${ms / 3600_000}h`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** `1 job`, `2 jobs`: a count with its noun, singular or plural. */
export const plural = (count: number, noun: string, nouns = `${noun}s`): string =>
  `${count} ${count === 1 ? noun : nouns}`;
