import { FanoutError } from '../../shared/domain/errors.js';

export type Fault =
  | { readonly action: 'throttle' }
  | { readonly action: 'error'; readonly error?: Error }
  | { readonly action: 'delay'; readonly ms: number }
  /** The call never returns, nor does any later one: the process is dead from that instant. */
  | { readonly action: 'kill' };

/**
 * Wraps an adapter (state, workspace, queue) so that chosen calls misbehave: the
 * `at`-th call overall, or the `at`-th call of `method`. Drives the fault scenarios.
 */
export function withFaults<T extends object>(
  inner: T,
  plan: readonly { at: number; method?: string; fault: Fault }[],
  executed: string[] = [],
): T {
  let calls = 0;
  const perMethod = new Map<string, number>();
  let dead = false;
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const name = String(property);
        calls++;
        perMethod.set(name, (perMethod.get(name) ?? 0) + 1);
        if (dead) return new Promise(() => {});
        const step = plan.find((p) =>
          p.method ? p.method === name && p.at === perMethod.get(name) : p.at === calls,
        );
        const fault = step?.fault;
        switch (fault?.action) {
          case 'kill':
            dead = true;
            return new Promise(() => {});
          case 'throttle':
            throw Object.assign(new Error('Rate exceeded (injected)'), {
              name: 'ProvisionedThroughputExceededException',
              $retryable: { throttling: true },
            });
          case 'error':
            throw (
              fault.error ?? new FanoutError('STATE_UNAVAILABLE', 'injected failure', { retryable: true })
            );
          case 'delay':
            await new Promise((resolve) => setTimeout(resolve, fault.ms));
            break;
        }
        executed.push(name);
        return value.apply(target, args);
      };
    },
  });
}
