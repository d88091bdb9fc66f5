import type { Logger } from '../ports/agent.js';
import type { JobLeases, Lease } from '../ports/state.js';
import { FanoutError } from './errors.js';

/**
 * Keeps one attempt's lease: renews it on a heartbeat, and proves it before a write
 * that matters. A renewal confirmed less than half a lease ago (by this process's
 * monotonic clock, measured from before the request was sent) still holds whatever
 * another worker's clock says, so such a write needs no round trip; after a pause
 * longer than that, the write waits for a fenced renewal and is refused if the lease
 * was taken over (invariant 3).
 */
export class LeaseKeeper {
  private confirmedAt: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly lease: Lease,
    private readonly state: Pick<JobLeases, 'renewLease'>,
    private readonly clock: () => number,
    private readonly leaseMs: number,
    /** performance.now() when the request that took the lease was sent. */
    acquiredAt: number,
  ) {
    this.confirmedAt = acquiredAt;
  }

  private async renew(): Promise<'renewed' | 'lost'> {
    const sentAt = performance.now();
    const answer = await this.state.renewLease(this.lease, this.clock(), this.leaseMs);
    if (answer === 'renewed') this.confirmedAt = Math.max(this.confirmedAt, sentAt);
    return answer;
  }

  /** Renews every `everyMs`; calls `onLost` once the lease belongs to someone else. */
  startHeartbeat(everyMs: number, onLost: () => void, logger: Logger): void {
    this.timer = setInterval(() => {
      this.renew().then(
        (answer) => {
          if (answer === 'lost') onLost();
        },
        (error: unknown) =>
          logger.warn('heartbeat failed; will try again', {
            jobKey: this.lease.jobKey,
            error: String(error),
          }),
      );
    }, everyMs);
  }

  stopHeartbeat(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Resolves when the lease is certainly this attempt's; throws LEASE_LOST otherwise. */
  async prove(): Promise<void> {
    if (performance.now() - this.confirmedAt < this.leaseMs / 2) return;
    if ((await this.renew()) === 'lost') {
      throw new FanoutError('LEASE_LOST', `lease on ${this.lease.jobKey} was lost: write refused`, {
        retryable: true,
      });
    }
  }
}
