import { FanoutError } from '../shared/domain/errors.js';

/**
 * Validation of command-line values at the edge; each error names the flag and a good
 * value. A whole number (`integer`) or any number (`decimal`) from `min` to `max`, or the
 * fallback when the flag is absent.
 */
export const integer = (
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
) => numberFlag(value, flag, fallback, { min, max, whole: true });

export const decimal = (
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
) => numberFlag(value, flag, fallback, { min, max, whole: false });

function numberFlag(
  value: string | undefined,
  flag: string,
  fallback: number,
  range: { readonly min: number; readonly max: number; readonly whole: boolean },
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  const { min, max, whole } = range;
  if (value.trim() === '' || !(whole ? Number.isInteger(n) : Number.isFinite(n)) || n < min || n > max) {
    throw new FanoutError(
      'INVALID_INPUT',
      `${flag} must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max}, not "${value}"`,
    );
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
