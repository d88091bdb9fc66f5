import type { LocalQueue } from '../shared/adapters/local-queue.js';
import { FanoutError } from '../shared/domain/errors.js';
import { parseRunId } from '../shared/domain/job.js';
import { repairQueue } from '../shared/local/integrity.js';
import { adoptRun, checkStateDir, openStateDir, readCurrentRun } from '../shared/local/state-dir.js';
import { commandFlags } from './command.js';

export const REPAIR_HELP = `Usage: fanout repair [options]

Rebuilds the local queue from the state table, after \`fanout run\` found the queue
journal damaged or missing jobs: every job of the run that was sent and has not
finished, and has no message, gets its message again (kept in its workspace at send).
A damaged journal is moved aside (journal.jsonl.damaged-<time>) and what can still be
read of it is kept. Finished jobs are not touched; nothing is run.

Options:
  --state-dir PATH       the state dir (default .fanout)
  --run-id ID            the run (default: the one \`fanout run\` resumes)`;

export async function repairCommand(
  args: string[],
  out: (text: string) => void = console.log,
): Promise<number> {
  const values = commandFlags(
    args,
    { 'state-dir': { type: 'string' }, 'run-id': { type: 'string' } },
    REPAIR_HELP,
    out,
  );
  if (!values) return 0;
  const stateDir = values['state-dir'] ?? '.fanout';
  checkStateDir(stateDir);
  const runId =
    values['run-id'] !== undefined ? parseRunId(values['run-id']) : readCurrentRun(stateDir)?.runId;
  if (!runId)
    throw new FanoutError('INVALID_INPUT', `no run to repair in ${stateDir}: name one with --run-id`);
  const local = await openStateDir(stateDir, { create: true, command: 'repair', repair: true });
  try {
    // `repair: true` refused a live run, so this command holds the journal itself.
    const queue = local.journal as LocalQueue;
    const summary = await repairQueue({ runId, state: local.state, queue, workspaces: local.workspaces });
    if (queue.salvagedTo)
      out(`The damaged journal was moved to ${queue.salvagedTo}; its readable entries were kept.`);
    out(
      `Run ${runId}: ${summary.requeued.length} job(s) put back on the queue` +
        (summary.requeued.length > 0 ? `: ${summary.requeued.join(', ')}` : ''),
    );
    for (const key of summary.unrecoverable) {
      out(`  ${key}: its message was not kept (sent by an older fanout); send its issue again to the run`);
    }
    adoptRun(stateDir, runId);
    out('`fanout run` resumes the run.');
    return summary.unrecoverable.length > 0 ? 1 : 0;
  } finally {
    await local.close();
  }
}
