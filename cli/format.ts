import type { RepositoryRow, RunReport } from '../shared/domain/report.js';
import type { StatusSnapshot } from '../shared/domain/status.js';
import { formatMs, formatUsd, plural } from '../shared/domain/units.js';

/** How the command line shows a run: the report (text and CSV) and the fleet's status. */

/** Columns padded to their widest cell, two spaces apart; `rule` draws a line under the header. */
function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  options: { readonly rule?: boolean; readonly empty?: string } = {},
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    line(header),
    ...(options.rule === false ? [] : [line(widths.map((w) => '-'.repeat(w)))]),
    ...(rows.length === 0 && options.empty ? [options.empty] : rows.map(line)),
  ].join('\n');
}

export function formatReport(report: RunReport): string {
  const rows = report.jobs.map((job) => [
    job.jobKey,
    job.status + (job.errorCode ? ` (${job.errorCode})` : job.verdict ? ` (${job.verdict})` : ''),
    job.durationMs === undefined ? '-' : formatMs(job.durationMs),
    formatUsd(Math.round(job.costUsd * 1e6)),
    String(job.attempts),
    job.worker ?? '-',
    ...(job.workspace ? [job.workspace] : []),
  ]);
  const t = report.timing;
  const lines = [
    `Run ${report.runId}: ${plural(report.totals.jobs, 'job')}, ${plural(report.workers, 'worker')}${report.complete ? '' : ' (incomplete: run `fanout run` again to resume)'}`,
    '',
    table(
      [
        'job',
        'outcome',
        'duration',
        'cost',
        'attempts',
        'worker',
        ...(report.jobs.some((j) => j.workspace) ? ['workspace'] : []),
      ],
      rows,
    ),
    '',
    `done ${report.totals.DONE}  failed ${report.totals.FAILED}  skipped ${report.totals.SKIPPED}  pending ${report.totals.PENDING + report.totals.RUNNING}`,
    `spent ${formatUsd(Math.round(report.costUsd.spent * 1e6))} of ${formatUsd(Math.round(report.costUsd.budget * 1e6))} budget` +
      (report.costUsd.abandoned > 0
        ? ` (+${formatUsd(Math.round(report.costUsd.abandoned * 1e6))} charged for reservations of crashed attempts)`
        : '') +
      (report.costUsd.reserved > 0
        ? ` (${formatUsd(Math.round(report.costUsd.reserved * 1e6))} still reserved)`
        : ''),
    `wall ${formatMs(t.wallMs)} (+${formatMs(t.startupMs)} start-up)  serial ${formatMs(t.serialMs)}  ideal ${formatMs(t.idealMs)}`,
    `speedup ${t.speedup.toFixed(2)}x  efficiency ${(t.efficiency * 100).toFixed(1)}% of the ideal makespan` +
      (t.caveat ? ` (${t.caveat})` : ''),
  ];
  const verified = report.jobs.filter((job) => job.verification);
  if (verified.length > 0) {
    lines.push('', 'verification (tests before and after the change; review):');
    for (const job of verified) lines.push(`  ${job.jobKey}  ${job.verification}`);
  }
  if (report.repositories.length > 1) lines.push('', repositoriesTable(report.repositories));
  if (report.deadLetters.length > 0) {
    lines.push('', `dead-letter queue (${report.deadLetters.length}):`);
    for (const d of report.deadLetters) lines.push(`  ${d.jobKey ?? d.messageId}  ${d.code}  ${d.reason}`);
  }
  return lines.join('\n');
}

/** A run's repositories, a row each: shown when a run has more than one. */
function repositoriesTable(rows: readonly RepositoryRow[]): string {
  return table(
    ['repository', 'jobs', 'done', 'failed', 'skipped', 'waiting', 'running', 'cost'],
    rows.map((r) => [
      r.repo,
      String(r.jobs),
      String(r.done),
      String(r.failed),
      String(r.skipped),
      String(r.waiting),
      String(r.running),
      formatUsd(Math.round(r.costUsd * 1e6)),
    ]),
  );
}

/** A run's jobs by priority: shown when a run has jobs other than normal ones. */
function prioritiesTable(rows: StatusSnapshot['priorities']): string {
  return table(
    ['priority', 'jobs', 'waiting', 'running', 'finished'],
    rows.map((r) => [r.priority, String(r.jobs), String(r.waiting), String(r.running), String(r.finished)]),
  );
}

export function formatStatus(s: StatusSnapshot): string {
  const ago = (t?: number) => (t === undefined ? '-' : `${formatMs(Math.max(0, s.at - t))} ago`);
  const rows = s.workers.map((w) => [
    w.workerId,
    w.state,
    w.jobKey ? `${w.jobKey} (${formatMs(s.at - (w.since ?? s.at))})` : '-',
    String(w.completed),
    formatUsd(w.costMicros),
    ago(w.heartbeatAt),
  ]);
  const t = s.totals;
  const l = s.ledger;
  return [
    `Run ${s.runId}: ${plural(t.jobs, 'job')}${
      s.running ? '' : t.PENDING + t.RUNNING > 0 ? ' (not running: `fanout run` resumes it)' : ' (finished)'
    }`,
    table(['worker', 'state', 'issue', 'completed', 'cost', 'heartbeat'], rows, {
      rule: false,
      empty: '(no worker has taken a job yet)',
    }),
    `queue ${s.queue.visible} waiting, ${s.queue.inFlight} in flight, ${s.queue.deadLetters} in the dead-letter queue`,
    `done ${t.DONE}  failed ${t.FAILED}  skipped ${t.SKIPPED}  running ${t.RUNNING}  pending ${t.PENDING}` +
      (s.verdicts.verified + s.verdicts.unverified + s.verdicts.rejected > 0
        ? `  (tested: ${s.verdicts.verified} verified, ${s.verdicts.unverified} unverified, ${s.verdicts.rejected} rejected)`
        : ''),
    `spent ${formatUsd(l.spentMicros)}  reserved ${formatUsd(l.reservedMicros)}` +
      (l.abandonedMicros > 0 ? `  abandoned ${formatUsd(l.abandonedMicros)}` : '') +
      `  budget ${formatUsd(l.budgetMicros)}` +
      (l.repoBudgetMicros !== undefined ? ` (each repository at most ${formatUsd(l.repoBudgetMicros)})` : ''),
    `throughput ${s.throughputPerMinute.toFixed(1)} jobs/min` +
      (s.etaMs !== undefined && t.PENDING + t.RUNNING > 0 ? `  ETA ${formatMs(s.etaMs)}` : ''),
    ...(s.priorities.some((p) => p.priority !== 'normal' && p.jobs > 0)
      ? ['', prioritiesTable(s.priorities)]
      : []),
    ...(s.repositories.length > 1 ? ['', repositoriesTable(s.repositories)] : []),
  ].join('\n');
}

const csvCell = (value: unknown) => {
  let text = value === undefined ? '' : String(value);
  // A cell that starts like a formula is run by spreadsheets (=HYPERLINK(...)): make it text.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
};

export function formatCsv(report: RunReport): string {
  const header = [
    'job',
    'title',
    'outcome',
    'error_code',
    'error_message',
    'duration_ms',
    'attempts',
    'cost_usd',
    'worker',
    'workspace',
  ];
  const rows = report.jobs.map((job) =>
    [
      job.jobKey,
      job.title,
      job.status,
      job.errorCode,
      job.errorMessage,
      job.durationMs,
      job.attempts,
      job.costUsd,
      job.worker,
      job.workspace,
    ]
      .map(csvCell)
      .join(','),
  );
  return `${[header.join(','), ...rows].join('\n')}\n`;
}
