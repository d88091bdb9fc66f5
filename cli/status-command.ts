import { FanoutError } from '../shared/domain/errors.js';
import { parseRunId } from '../shared/domain/job.js';
import { buildStatus, type StatusSnapshot } from '../shared/domain/status.js';
import { parseDuration } from '../shared/domain/units.js';
import { type CommandDeps, printer, targetCommandFlags } from './command.js';
import { formatStatus } from './format.js';
import { TARGET_HELP, type Target, withTarget } from './targets.js';

export const STATUS_HELP = `Usage: fanout status <target> [options]

The fleet from the state table: one row per worker (state, current issue,
completed, cost, last heartbeat), queue depth, in flight, dead-letter queue,
done/failed/skipped, spent/reserved/budget, throughput and an ETA.

${TARGET_HELP}

Options:
  --run-id ID            the run (default: the newest, or the local current run)
  --watch                redraw until Ctrl-C
  --interval D           redraw interval with --watch (default 2s)
  --json                 print one snapshot as JSON, for scripts`;

export async function snapshot(target: Target, runId: string | undefined): Promise<StatusSnapshot> {
  const id = runId ?? (await target.defaultRunId());
  if (!id)
    throw new FanoutError(
      'INVALID_INPUT',
      `no run found in ${target.description}: send one with fanout send`,
    );
  const run = await target.state.getRun(id);
  if (!run) throw new FanoutError('INVALID_INPUT', `run "${id}" does not exist in ${target.description}`);
  const [jobs, slots, queue] = await Promise.all([
    target.state.listJobs(id),
    target.state.listSlots(),
    target.queue.depth(),
  ]);
  return buildStatus({
    run,
    jobs,
    slots,
    queue,
    now: Date.now(),
    ...(target.running === undefined ? {} : { running: target.running }),
  });
}

export async function statusCommand(args: string[], deps: CommandDeps = {}): Promise<number> {
  const out = printer(deps);
  const values = targetCommandFlags(
    args,
    { watch: { type: 'boolean' }, interval: { type: 'string' }, json: { type: 'boolean' } },
    STATUS_HELP,
    out,
  );
  if (!values) return 0;
  const interval = parseDuration(values.interval ?? '2s', '--interval');
  let ended = false;
  if (values['run-id'] !== undefined) parseRunId(values['run-id']);
  return withTarget(values, deps.aws, async (target) => {
    if (values.json) {
      out(JSON.stringify(await snapshot(target, values['run-id']), null, 2));
      return 0;
    }
    if (!values.watch) {
      out(formatStatus(await snapshot(target, values['run-id'])));
      return 0;
    }
    let stop = false;
    const onSigint = () => {
      stop = true;
    };
    process.once('SIGINT', onSigint);
    let lines = 0;
    while (!stop) {
      let text: string;
      try {
        text = formatStatus(await snapshot(target, values['run-id']));
      } catch (error) {
        // The live run this watched has ended and took its endpoint with it.
        if (!target.running) throw error;
        out('The fanout run has ended. Its last state:');
        ended = true;
        break;
      }
      const clear = process.stdout.isTTY && lines > 0 ? `\x1b[${lines}A\x1b[0J` : '';
      process.stdout.write(`${clear}${text}\n`);
      lines = text.split('\n').length;
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
    process.off('SIGINT', onSigint);
    return 0;
  }).then(async (code) => {
    if (!ended) return code;
    // Read the state dir itself now that no run serves it.
    return withTarget(values, deps.aws, async (target) => {
      out(formatStatus(await snapshot(target, values['run-id'])));
      return 0;
    });
  });
}
