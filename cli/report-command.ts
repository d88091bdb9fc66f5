import { FanoutError } from '../shared/domain/errors.js';
import { parseRunId, prefixForKey } from '../shared/domain/job.js';
import { reportFromState } from '../shared/domain/report.js';
import { type CommandDeps, printer, targetCommandFlags } from './command.js';
import { formatCsv, formatReport } from './format.js';
import { TARGET_HELP, withTarget } from './targets.js';

export const REPORT_HELP = `Usage: fanout report <target> [options]

One run's jobs with outcome, error code, duration, attempts, cost, worker and
workspace location, and the run's totals.

${TARGET_HELP}

Options:
  --run-id ID            the run (default: the newest, or the local current run)
  --json                 the report as JSON
  --csv                  one line per job, as CSV`;

export async function reportCommand(args: string[], deps: CommandDeps = {}): Promise<number> {
  const out = printer(deps);
  const values = targetCommandFlags(
    args,
    { json: { type: 'boolean' }, csv: { type: 'boolean' } },
    REPORT_HELP,
    out,
  );
  if (!values) return 0;
  if (values.json && values.csv) throw new FanoutError('INVALID_INPUT', 'give --json or --csv, not both');
  return withTarget(values, deps.aws, async (target) => {
    const runId = values['run-id'] !== undefined ? parseRunId(values['run-id']) : await target.defaultRunId();
    if (!runId) throw new FanoutError('INVALID_INPUT', `no run found in ${target.description}`);
    const run = await target.state.getRun(runId);
    if (!run)
      throw new FanoutError('INVALID_INPUT', `run "${runId}" does not exist in ${target.description}`);
    const fromState = reportFromState({
      run,
      jobs: await target.state.listJobs(runId),
      deadLetters: await target.deadLetters(runId),
      locate: (key) => target.workspaces.open(prefixForKey(runId, key)).location,
    });
    // A local run measured its own timing (start-up, wall, the work of this session): while the
    // jobs are as it left them, report that, so both reports of a run say the same.
    const saved = target.savedReport?.(runId);
    const same = saved && JSON.stringify(saved.totals) === JSON.stringify(fromState.totals);
    const report = same ? { ...fromState, workers: saved.workers, timing: saved.timing } : fromState;
    if (values.json) out(JSON.stringify(report, null, 2));
    else if (values.csv) out(formatCsv(report).trimEnd());
    else out(formatReport(report));
    return 0;
  });
}
