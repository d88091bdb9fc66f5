import type {
  FinalStatus,
  JobLeases,
  JobOutcome,
  JobRecord,
  Lease,
  LeaseAnswer,
  LedgerEntry,
  RunLedger,
  RunRecord,
  WorkerSlot,
  WorkerSlots,
} from '../../shared/ports/state.js';

type MutableRun = { -readonly [K in keyof RunRecord]: RunRecord[K] } & { outstandingSet: Set<string> };
type MutableJob = { -readonly [K in keyof JobRecord]: JobRecord[K] } & {
  attemptCosts: Record<string, number>;
  firstStartedAt?: number;
};

/**
 * The state port's three roles in memory, for fast unit tests of the domain's logic (the
 * lease keeper, the ledger, the attempt). The same conditions as the DynamoDB adapter,
 * one synchronous step per call; the engine-backed tests prove the adapter itself.
 */
export class MemoryState implements RunLedger, JobLeases, WorkerSlots {
  readonly runs = new Map<string, MutableRun>();
  readonly jobs = new Map<string, MutableJob>();
  readonly slots = new Map<string, WorkerSlot>();
  /** Every call by method name, so a test can say how many round trips a path takes. */
  readonly calls: string[] = [];

  private run(runId: string): MutableRun {
    const run = this.runs.get(runId);
    if (!run) throw new Error(`no run ${runId}`);
    return run;
  }

  private view(run: MutableRun): RunRecord {
    const { outstandingSet, ...rest } = run;
    return { ...rest, openReservations: outstandingSet.size, consistent: true };
  }

  async createRun(run: { runId: string; budgetMicros: number; createdAt: number }) {
    this.calls.push('createRun');
    if (this.runs.has(run.runId)) return 'exists' as const;
    this.runs.set(run.runId, {
      ...run,
      spentMicros: 0,
      abandonedMicros: 0,
      reservedMicros: 0,
      availableMicros: run.budgetMicros,
      jobCount: 0,
      openReservations: 0,
      consistent: true,
      outstandingSet: new Set(),
    });
    return 'created' as const;
  }

  async getRun(runId: string) {
    this.calls.push('getRun');
    const run = this.runs.get(runId);
    return run ? this.view(run) : undefined;
  }

  async listRuns(limit: number) {
    return [...this.runs.values()]
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit)
      .map((run) => this.view(run));
  }

  async addJobCount(runId: string, count: number) {
    this.run(runId).jobCount += count;
  }

  async reserve(runId: string, reservationId: string, amountMicros: number) {
    this.calls.push('reserve');
    const run = this.run(runId);
    if (run.outstandingSet.has(reservationId)) return { kind: 'duplicate', shard: 0 } as const;
    if (run.availableMicros < amountMicros) {
      return {
        kind: 'over-budget',
        unspentMicros: run.budgetMicros - run.spentMicros - run.abandonedMicros,
      } as const;
    }
    run.availableMicros -= amountMicros;
    run.reservedMicros += amountMicros;
    run.outstandingSet.add(reservationId);
    return { kind: 'reserved', shard: 0 } as const;
  }

  async openReservations(runId: string): Promise<LedgerEntry[]> {
    return [...this.run(runId).outstandingSet].map((id) => ({ id, shard: 0 }));
  }

  async settle(
    runId: string,
    entry: LedgerEntry,
    reservedMicros: number,
    actualMicros: number,
    kind: 'spent' | 'abandoned' = 'spent',
  ) {
    this.calls.push('settle');
    const run = this.run(runId);
    if (!run.outstandingSet.delete(entry.id)) return 'already-settled' as const;
    run.availableMicros += reservedMicros - actualMicros;
    run.reservedMicros -= reservedMicros;
    if (kind === 'spent') run.spentMicros += actualMicros;
    else run.abandonedMicros += actualMicros;
    return 'settled' as const;
  }

  async registerJob(job: Parameters<JobLeases['registerJob']>[0]) {
    const id = `${job.runId}/${job.jobKey}`;
    const found = this.jobs.get(id);
    if (found) return found.enqueuedAt === undefined && found.status === 'PENDING' ? 'unsent' : 'exists';
    this.jobs.set(id, { ...job, status: 'PENDING', fence: 0, attempts: 0, costMicros: 0, attemptCosts: {} });
    return 'created' as const;
  }

  async markEnqueued(runId: string, jobKey: string, now: number) {
    const job = this.jobs.get(`${runId}/${jobKey}`);
    if (job) job.enqueuedAt ??= now;
  }

  async acquireLease(
    runId: string,
    jobKey: string,
    holder: { owner: string; worker: string },
    now: number,
    leaseMs: number,
  ): Promise<LeaseAnswer> {
    this.calls.push('acquireLease');
    const id = `${runId}/${jobKey}`;
    const job =
      this.jobs.get(id) ??
      ({
        runId,
        jobKey,
        title: jobKey,
        status: 'PENDING',
        fence: 0,
        attempts: 0,
        costMicros: 0,
        attemptCosts: {},
      } as MutableJob);
    const free = job.status === 'PENDING' || (job.status === 'RUNNING' && (job.leaseUntil ?? 0) < now);
    if (!free) {
      if (job.status === 'RUNNING')
        return { kind: 'held', until: job.leaseUntil ?? now, owner: job.leaseOwner ?? '' };
      return { kind: 'finished', status: job.status as FinalStatus };
    }
    Object.assign(job, {
      status: 'RUNNING',
      leaseOwner: holder.owner,
      worker: holder.worker,
      leaseUntil: now + leaseMs,
      startedAt: now,
      heartbeatAt: now,
      fence: job.fence + 1,
      attempts: job.attempts + 1,
    });
    job.firstStartedAt ??= now;
    this.jobs.set(id, job);
    return { kind: 'acquired', fence: job.fence, attempts: job.attempts, firstStartedAt: job.firstStartedAt };
  }

  /** The job, if `lease` is still its lease (the fencing condition of every holder's write). */
  private held(lease: Lease): MutableJob | undefined {
    const job = this.jobs.get(`${lease.runId}/${lease.jobKey}`);
    return job?.status === 'RUNNING' && job.fence === lease.fence && job.leaseOwner === lease.owner
      ? job
      : undefined;
  }

  async renewLease(lease: Lease, now: number, leaseMs: number) {
    this.calls.push('renewLease');
    const job = this.held(lease);
    if (!job) return 'lost' as const;
    job.leaseUntil = now + leaseMs;
    job.heartbeatAt = now;
    return 'renewed' as const;
  }

  async releaseLease(
    lease: Lease,
    error?: { code: JobRecord['errorCode'] & string; message: string },
    costMicros = 0,
  ) {
    this.calls.push('releaseLease');
    const job = this.held(lease);
    if (!job) return 'lost' as const;
    Object.assign(job, { status: 'PENDING', leaseOwner: undefined, leaseUntil: undefined });
    if (error) Object.assign(job, { errorCode: error.code, errorMessage: error.message });
    job.attemptCosts[lease.owner] = costMicros;
    return 'released' as const;
  }

  async recordAttemptCost(lease: Lease, costMicros: number) {
    this.calls.push('recordAttemptCost');
    const job = this.jobs.get(`${lease.runId}/${lease.jobKey}`);
    if (job) job.attemptCosts[lease.owner] = costMicros;
  }

  async reopenJob(runId: string, jobKey: string) {
    const job = this.jobs.get(`${runId}/${jobKey}`);
    if (job?.status !== 'FAILED') return 'not-failed' as const;
    Object.assign(job, {
      status: 'PENDING',
      errorCode: undefined,
      errorMessage: undefined,
      finishedAt: undefined,
    });
    return 'reopened' as const;
  }

  async finishJob(lease: Lease, outcome: JobOutcome, now: number) {
    this.calls.push('finishJob');
    const job = this.held(lease);
    if (!job) return 'lost' as const;
    const { costMicros, ...rest } = outcome;
    Object.assign(job, rest, { finishedAt: now, leaseOwner: undefined, leaseUntil: undefined });
    job.attemptCosts[lease.owner] = costMicros;
    return 'recorded' as const;
  }

  async getJob(runId: string, jobKey: string): Promise<JobRecord | undefined> {
    const job = this.jobs.get(`${runId}/${jobKey}`);
    if (!job) return undefined;
    const { attemptCosts, ...rest } = job;
    return { ...rest, costMicros: Object.values(attemptCosts).reduce((a, b) => a + b, 0) };
  }

  async listJobs(runId: string): Promise<JobRecord[]> {
    const keys = [...this.jobs.values()].filter((j) => j.runId === runId).map((j) => j.jobKey);
    return Promise.all(keys.map(async (key) => (await this.getJob(runId, key)) as JobRecord));
  }

  async claimSlot(workerId: string, owner: string, now: number, leaseMs: number) {
    const slot = this.slots.get(workerId);
    if (slot && slot.leaseUntil >= now && slot.owner !== owner) return false;
    this.slots.set(workerId, { workerId, owner, leaseUntil: now + leaseMs, heartbeatAt: now });
    return true;
  }

  async acquireSlot(count: number, owner: string, now: number, leaseMs: number, prefer = 0) {
    for (let i = 0; i < count; i++) {
      const workerId = `worker-${String(((prefer + i) % count) + 1).padStart(2, '0')}`;
      if (await this.claimSlot(workerId, owner, now, leaseMs)) return workerId;
    }
    return undefined;
  }

  async releaseSlot(workerId: string, owner: string, now: number) {
    const slot = this.slots.get(workerId);
    if (slot?.owner === owner) this.slots.set(workerId, { workerId, leaseUntil: now, heartbeatAt: now });
  }

  async listSlots() {
    return [...this.slots.values()];
  }
}
