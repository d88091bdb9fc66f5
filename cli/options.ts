import { FanoutError } from '../shared/domain/errors.js';

/** Validation of command-line values at the edge; each error names the flag and a good value. */
export function integer(
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new FanoutError(
      'INVALID_INPUT',
      `${flag} must be a whole number from ${min} to ${max}, not "${value}"`,
    );
  }
  return n;
}

export function decimal(
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new FanoutError('INVALID_INPUT', `${flag} must be a number from ${min} to ${max}, not "${value}"`);
  }
  return n;
}

/**
 * `--budget-usd -1` reaches our validation (and its clear message) instead of
 * parseArgs's complaint that "-1" looks like an option.
 */
export function joinNegativeNumbers(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (arg.startsWith('--') && !arg.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}
