import type { WorkerSlots } from '../ports/state.js';

/** A worker identity (worker-01..N) held by one owner, so `fanout status` shows the fleet. */
export interface HeldSlot {
  readonly workerId: string;
  /** Gives the slot back (and stops renewing it). */
  release(): Promise<void>;
}

/**
 * Takes a worker slot for its owner: the named one (a local worker process is one worker
 * for its whole life) or the first free one of `count` from `prefer` on (a Lambda
 * invocation). With `renewEveryMs` the slot's lease is renewed until it is released;
 * without, it lasts `leaseMs`, which covers the holder's whole life. Undefined when none
 * of `count` is free.
 */
export async function holdSlot(
  slots: WorkerSlots,
  options: {
    readonly owner: string;
    readonly leaseMs: number;
    readonly clock: () => number;
    readonly slot: { readonly name: string } | { readonly count: number; readonly prefer?: number };
    readonly renewEveryMs?: number;
  },
): Promise<HeldSlot | undefined> {
  const { owner, leaseMs, clock } = options;
  // A named slot is this holder's whatever the first claim says: a holder of the previous
  // run that died keeps it until its lease ends, and the renewals take it then.
  const wanted = options.slot;
  let workerId: string | undefined;
  if ('name' in wanted) {
    await slots.claimSlot(wanted.name, owner, clock(), leaseMs);
    workerId = wanted.name;
  } else {
    workerId = await slots.acquireSlot(wanted.count, owner, clock(), leaseMs, wanted.prefer);
  }
  if (workerId === undefined) return undefined;
  const timer = options.renewEveryMs
    ? setInterval(() => {
        slots.claimSlot(workerId, owner, clock(), leaseMs).catch(() => undefined);
      }, options.renewEveryMs)
    : undefined;
  timer?.unref();
  return {
    workerId,
    release: async () => {
      clearInterval(timer);
      await slots.releaseSlot(workerId, owner, clock());
    },
  };
}
