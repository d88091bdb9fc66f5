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
  'SERVICE_UNAVAILABLE',
  'MESSAGE_TOO_LARGE',
  'ACCESS_DENIED',
  'STATE_DAMAGED',
  'NO_PROGRESS',
  'SANDBOX_FAILED',
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

/** Error names AWS services (and the SDK) give to conditions that pass: throttling, timeouts, 5xx. */
const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'InternalServerException',
  'InternalServerError',
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'ModelTimeoutException',
  'ModelNotReadyException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'TransactionInProgressException',
]);

/** Network failures Node reports by code: a connection reset or refused, a DNS hiccup, a socket timeout. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  status?: number;
  $retryable?: unknown;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/**
 * True when trying again may succeed. Decided from the SDK's own signals (`$retryable`,
 * `$fault: 'server'`, the HTTP status), the error's name and Node's network codes, never
 * from message text; an error it does not know is permanent only when none of these say otherwise.
 */
export function isTransient(error: unknown): boolean {
  return (
    inCauses(error, (e: SdkErrorShape) => {
      const status = e.$metadata?.httpStatusCode ?? e.status;
      return (
        Boolean(e.$retryable) ||
        e.$fault === 'server' ||
        (status !== undefined && (status >= 500 || status === 429)) ||
        (e.name !== undefined && TRANSIENT_NAMES.has(e.name)) ||
        (e.code !== undefined && TRANSIENT_CODES.has(e.code)) ||
        undefined
      );
    }) ?? false
  );
}

/**
 * The first answer `pick` gives for an error or the errors that caused it (`cause`, four
 * deep at most: a wrapped SDK or fetch error keeps its facts a level or two down).
 */
export function inCauses<T, E extends object = Record<string, unknown>>(
  error: unknown,
  pick: (e: E) => T | undefined,
): T | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const found = pick(e as E);
    if (found !== undefined) return found;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Turns anything thrown into a FanoutError, keeping the original as `cause`: a transient
 * failure (throttling, 5xx, a reset connection) becomes a retryable SERVICE_UNAVAILABLE,
 * anything else the `fallback` code.
 */
export function toFanoutError(error: unknown, fallback: ErrorCode = 'AGENT_FAILED'): FanoutError {
  if (error instanceof FanoutError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (isTransient(error))
    return new FanoutError('SERVICE_UNAVAILABLE', message, { retryable: true, cause: error });
  return new FanoutError(fallback, message, { cause: error });
}
