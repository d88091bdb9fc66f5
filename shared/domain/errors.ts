/** Every failure fanout reports carries one of these codes; records, metrics and alarms key on it. */
export const ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_MESSAGE',
  'AGENT_FAILED',
  'AGENT_TIMEOUT',
  'BUDGET_EXHAUSTED',
  'LEASE_LOST',
  'CANCELLED',
  'STATE_UNAVAILABLE',
  'TABLE_MISSING',
  'STATE_DIR_NOT_WRITABLE',
  'WORKER_CRASHED',
  'MAX_RECEIVES_EXCEEDED',
  'WORKSPACE_PATH_REFUSED',
  'WORKSPACE_WRITE_FAILED',
  'DEADLINE',
  'RUN_TIME_EXCEEDED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class FanoutError extends Error {
  readonly code: ErrorCode;
  /** True when trying the same job again may succeed (throttling, a lost lease, a crash). */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FanoutError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Turns anything thrown into a FanoutError, keeping the original as `cause`. */
export function toFanoutError(error: unknown, fallback: ErrorCode = 'AGENT_FAILED'): FanoutError {
  if (error instanceof FanoutError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FanoutError(fallback, message, { cause: error });
}
