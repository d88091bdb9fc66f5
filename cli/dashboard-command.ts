import { spawn } from 'node:child_process';
import { buildPage } from '../dashboard/assets.js';
import { startDashboard } from '../dashboard/server.js';
import { DashboardSource, stateDirSignature } from '../dashboard/source.js';
import { FanoutError } from '../shared/domain/errors.js';
import { parseRunId } from '../shared/domain/job.js';
import { parseDuration } from '../shared/domain/units.js';
import { type CommandDeps, printer, targetCommandFlags } from './command.js';
import { integer } from './options.js';
import { openTarget, TARGET_HELP } from './targets.js';

export const DASHBOARD_HELP = `Usage: fanout dashboard [target] [options]

A web page of a run, live: the fleet's timeline, the budget over time, throughput, every
job (its transcript, diff and error), and the dead letters. It reads what fanout status
and report read (locally through a running fanout run), and follows the newest run.

${TARGET_HELP}
  (default: --local)

Options:
  --port N               the port (default 4510; 0: any free one)
  --host ADDRESS         where to listen (default 127.0.0.1); another address shows the
                         page to your network, which the command warns of
  --open                 open the page in the browser
  --allow-actions        let the page redrive dead letters (refused otherwise)
  --interval D           how often the state is read while a page is open (default 1s
                         locally, 5s on AWS, where each read of the jobs costs DynamoDB reads)
  --run-id ID            show this run rather than follow the newest`;

export async function dashboardCommand(args: string[], deps: CommandDeps = {}): Promise<number> {
  const out = printer(deps);
  const values = targetCommandFlags(
    args,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      open: { type: 'boolean' },
      'allow-actions': { type: 'boolean' },
      interval: { type: 'string' },
    },
    DASHBOARD_HELP,
    out,
  );
  if (!values) return 0;
  if (values['run-id'] !== undefined) parseRunId(values['run-id']);
  const port = integer(values.port, '--port', 4510, 0, 65_535);
  const host = values.host ?? '127.0.0.1';
  const local = !values.stack && !values['queue-url'];
  const flags = local ? { ...values, local: true } : values;
  // Fail now, with what to do, if the target cannot be opened (a missing stack, no credentials).
  const first = await openTarget(flags, deps.aws, false).catch((error: unknown) => {
    if (local && error instanceof FanoutError && /no local state/.test(error.message)) return undefined;
    throw error;
  });
  const description = first?.description ?? `the local state in ${values['state-dir'] ?? '.fanout'}`;
  await first?.close();
  // A local state dir is opened for each read: the dashboard never holds the engine a
  // `fanout run` needs. A stack's clients stay open.
  const source = new DashboardSource(
    () => openTarget(flags, deps.aws, false),
    !local,
    description,
    ...(local ? [stateDirSignature(values['state-dir'] ?? '.fanout')] : []),
  );
  const assets = await buildPage();
  const dashboard = await startDashboard({
    source,
    assets,
    host,
    port,
    allowActions: values['allow-actions'] === true,
    // DynamoDB reads cost money on AWS: the page there refreshes every 5 s unless told otherwise.
    intervalMs: values.interval ? parseDuration(values.interval, '--interval') : local ? 1000 : 5000,
  });
  const url = values['run-id']
    ? `${dashboard.url}?run=${encodeURIComponent(values['run-id'])}`
    : dashboard.url;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    out(
      `Warning: listening on ${host}: anyone who can reach this address sees the run (its issues, transcripts and diffs)` +
        (values['allow-actions'] ? ', and the page can redrive dead letters.' : '.'),
    );
  }
  out(
    `fanout dashboard: ${url} (${description}; ${values['allow-actions'] ? 'actions on' : 'read only'}; Ctrl-C stops it)`,
  );
  if (values.open) openBrowser(url);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dashboard.close();
  return 0;
}

function openBrowser(url: string): void {
  const command =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'start' : 'xdg-open';
  const child = spawn(command, [url], {
    stdio: 'ignore',
    detached: true,
    shell: process.platform === 'win32',
  });
  child.on('error', () => console.log(`Could not open a browser (${command}): open ${url} yourself.`));
  child.unref();
}
