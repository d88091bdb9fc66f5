import { parseRunId } from '../shared/domain/job.js';
import { redrive } from '../shared/domain/redrive.js';
import { type CommandDeps, printer, targetCommandFlags } from './command.js';
import { TARGET_HELP, withTarget } from './targets.js';

export const REDRIVE_HELP = `Usage: fanout redrive <target> [options]

Puts the dead-letter queue's jobs back on the job queue: each FAILED job becomes
PENDING again and runs on its next delivery. Messages that are not jobs (poison)
stay in the dead-letter queue, listed with the reason.

${TARGET_HELP}

Options:
  --run-id ID            only this run's jobs
  --dry-run              list what would be redriven, move nothing`;

export async function redriveCommand(args: string[], deps: CommandDeps = {}): Promise<number> {
  const out = printer(deps);
  const values = targetCommandFlags(args, { 'dry-run': { type: 'boolean' } }, REDRIVE_HELP, out);
  if (!values) return 0;
  return withTarget(values, deps.aws, async (target) => {
    const summary = await redrive(target.queue, target.state, {
      ...(values['run-id'] ? { runId: parseRunId(values['run-id']) } : {}),
      dryRun: Boolean(values['dry-run']),
    });
    // Locally, the next `fanout run` resumes the run that has jobs again.
    if (!values['dry-run']) for (const runId of summary.runs) target.adopt(runId);
    out(
      `${values['dry-run'] ? 'Would redrive' : 'Redrove'} ${summary.redriven.length} job(s) from the dead-letter queue of ${target.description}.`,
    );
    for (const key of summary.redriven) out(`  ${key}`);
    for (const item of summary.left) out(`  left ${item.jobKey ?? item.id}: ${item.reason}`);
    return 0;
  });
}
