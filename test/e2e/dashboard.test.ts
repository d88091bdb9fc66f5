/**
 * `fanout dashboard` in a real browser: Playwright (playwright-core) driving Debian's
 * Chromium. Where no Chromium is installed the tests are skipped with one loud line.
 * The screenshots the README shows are taken here (docs/dashboard/).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTarget, type Target } from '../../cli/targets.js';
import { buildPage, type PageAssets } from '../../dashboard/assets.js';
import { startDashboard } from '../../dashboard/server.js';
import { DashboardSource, stateDirSignature } from '../../dashboard/source.js';
import { embeddedDynamoClient } from '../../shared/adapters/embedded-dynamo.js';
import { FolderWorkspaceStore } from '../../shared/adapters/folder-workspace.js';
import { demoRun, fanout, fanoutStack, ROOT, savedReport } from '../support/cli.js';
import { startState } from '../support/engines.js';
import { MemoryState } from '../support/memory-state.js';

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path) => path && existsSync(path),
);
if (!CHROMIUM) {
  console.warn(
    '\n!!!!! BROWSER TESTS SKIPPED: no Chromium found. Install it (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH. !!!!!\n',
  );
}
/** The README's pictures: written there with FANOUT_SCREENSHOTS=1, to a temporary folder otherwise. */
const SHOTS =
  process.env.FANOUT_SCREENSHOTS === '1'
    ? join(ROOT, 'docs/dashboard')
    : join(tmpdir(), 'fanout-dashboard-shots');
/** The page's document, for functions Playwright runs in the browser (this file has no DOM types). */
declare const document: {
  querySelector(
    selector: string,
  ): { textContent: string | null; getAttribute(name: string): string | null } | null;
};

let browser: Browser;
let assets: PageAssets;
let dir: string;
beforeAll(async () => {
  if (!CHROMIUM) return;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  assets = await buildPage();
  dir = await mkdtemp(join(tmpdir(), 'fanout-dashboard-'));
  mkdirSync(SHOTS, { recursive: true });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The dashboard of a local state dir, as `fanout dashboard --state-dir` serves it. */
function localDashboard(stateDir: string, options: { allowActions?: boolean; port?: number } = {}) {
  const open = () => openTarget({ local: true, 'state-dir': stateDir }, undefined, false);
  return startDashboard({
    source: new DashboardSource(open, false, `the local state in ${stateDir}`, stateDirSignature(stateDir)),
    assets,
    port: options.port ?? 0,
    allowActions: options.allowActions === true,
    intervalMs: 500,
  });
}

async function newPage(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  (page as Page & { errors: string[] }).errors = errors;
  return page;
}
const text = async (page: Page, selector: string) => (await page.textContent(selector))?.trim() ?? '';

describe.skipIf(!CHROMIUM)('fanout dashboard, in Chromium', () => {
  it("follows a local run from start to finish: lanes fill, the budget rises, and the numbers are the report's", async () => {
    const stateDir = join(dir, 'live');
    // Open before the run exists: it says so, then follows the run when it starts.
    const dashboard = await localDashboard(stateDir);
    let run: ChildProcess | undefined;
    try {
      const page = await newPage(dashboard.url);
      await page.waitForSelector('#summary .error, #summary p');
      run = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'cli/fanout.ts',
          'run',
          '--mock-issues',
          '30',
          '--workers',
          '3',
          '--duration',
          '400ms-900ms',
          '--fail-rate',
          '0.1',
          '--state-dir',
          stateDir,
        ],
        { cwd: ROOT, stdio: 'ignore' },
      );
      const ended = new Promise<number | null>((resolve) => run?.on('exit', resolve));
      // Lanes fill: bars on three workers' lanes while it runs.
      await page.waitForFunction(
        () => Number(document.querySelector('#fleet-canvas')?.getAttribute('data-bars')) >= 6,
        undefined,
        { timeout: 60_000 },
      );
      expect(Number(await page.getAttribute('#fleet-canvas', 'data-lanes'))).toBe(3);
      const running = await text(page, '#card-running .value');
      const spentEarly = await text(page, '#card-spent .value');
      await page.screenshot({ path: join(SHOTS, 'live-run.png'), fullPage: false });
      expect(await ended).toBe(0);
      // The page sees the end by itself, and the budget rose on the way.
      await page.waitForFunction(
        () => document.querySelector('#summary .source')?.textContent?.includes('not running'),
        undefined,
        { timeout: 20_000 },
      );
      await page.waitForSelector('#finished-line');
      const report = savedReport(stateDir);
      expect(Number(running)).toBeGreaterThan(0);
      expect(await text(page, '#card-done .value')).toBe(String(report.totals.DONE));
      expect(await text(page, '#card-failed .value')).toBe(String(report.totals.FAILED));
      const spentEnd = await text(page, '#card-spent .value');
      expect(spentEnd).toBe(`$${report.costUsd.spent.toFixed(4)} of $${report.costUsd.budget.toFixed(2)}`);
      expect(spentEnd).not.toBe(spentEarly);
      expect(await text(page, '#finished-line')).toContain(
        `speedup ${report.timing.speedup.toFixed(2)}x, efficiency ${(report.timing.efficiency * 100).toFixed(1)}%`,
      );
      expect(await text(page, '#jobs-count')).toBe('30 of 30 jobs');
      // The spend by model: every job here was the simulate agent's.
      expect(await text(page, '#budget-facts table:last-of-type tbody')).toBe(
        `simulate${spentEnd.split(' ')[0]}`,
      );
      await page.screenshot({ path: join(SHOTS, 'finished-run.png'), fullPage: true });
      expect((page as Page & { errors: string[] }).errors).toEqual([]);
    } finally {
      run?.kill();
      await dashboard.close();
    }
  }, 120_000);

  it("shows a job of the scripted llm agent: its transcript's tool calls, its diff, its verification", async () => {
    const stateDir = join(dir, 'llm');
    expect(demoRun(stateDir).code).toBe(0);
    const dashboard = await localDashboard(stateDir);
    try {
      const page = await newPage(`${dashboard.url}#job=${encodeURIComponent('mock/backlog#1')}`);
      await page.waitForSelector('#job-title');
      expect(await text(page, '#job-status')).toBe('DONE (verified)');
      const transcript = await text(page, '#job .transcript');
      expect(transcript).toContain(
        'edit_file(path: "src/greet.ts", oldText: "\'Helo, \'", newText: "\'Hello, \'")',
      );
      expect(transcript).toContain('run_command(command: "npm test")');
      expect(await page.locator('#job details summary', { hasText: 'The reviewer' }).count()).toBe(1);
      // The diff rendered as a diff (diff2html), not as text.
      expect(await page.locator('#job .d2h-file-wrapper').count()).toBe(1);
      expect(await page.locator('#job .d2h-ins').count()).toBeGreaterThan(0);
      expect(await text(page, '#job .diff')).toContain("'Hello, ' + name");
      expect(await text(page, '#job-workspace')).toContain('jobs/mock/backlog/1');
      await page.locator('#job').screenshot({ path: join(SHOTS, 'job.png') });
    } finally {
      await dashboard.close();
    }
  }, 120_000);

  it("shows a failed job's reason; redrives from the page only with --allow-actions, never from another origin", async () => {
    const stateDir = join(dir, 'failed');
    expect(
      fanout(
        'run',
        '--mock-issues',
        '3',
        '--workers',
        '1',
        '--duration',
        '50ms',
        '--fail-rate',
        '1',
        '--state-dir',
        stateDir,
      ).code,
    ).toBe(0);
    const readOnly = await localDashboard(stateDir);
    try {
      const page = await newPage(readOnly.url);
      await page.waitForSelector('#dead-letters table');
      expect(await page.locator('#dead-letters tbody tr').count()).toBe(3);
      expect(await page.isDisabled('#dead-letters button:has-text("Redrive all")')).toBe(true);
      // The job's reason, in the table and on its own view.
      await page.waitForSelector('#jobs-table tbody tr');
      expect(await text(page, '#jobs-table tbody tr:first-child td:nth-child(3)')).toMatch(
        /^AGENT_FAILED: simulated failure of mock\/backlog#\d \(seed 42\)$/,
      );
      await page.click('#jobs-table tbody tr:first-child a');
      await page.waitForSelector('#job-error');
      expect(await text(page, '#job-error')).toMatch(/^AGENT_FAILED: simulated failure/);
      // A request with the page's token is still refused: actions are off.
      const token = (await page.getAttribute('meta[name="fanout-token"]', 'content')) as string;
      const refused = await page.evaluate(async (t) => {
        const r = await fetch('/api/redrive', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-fanout-token': t },
          body: '{"all":true}',
        });
        return { status: r.status, body: await r.json() };
      }, token);
      expect(refused).toEqual({
        status: 403,
        body: { error: expect.stringMatching(/actions are off.*--allow-actions/) },
      });
    } finally {
      await readOnly.close();
    }

    const acting = await localDashboard(stateDir, { allowActions: true });
    try {
      const host = new URL(acting.url).host;
      const post = (headers: Record<string, string>) =>
        fetch(`${acting.url}api/redrive`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: '{"all":true}',
        });
      // Another site's page: its Origin, with or without the token; a rebound Host; no token at all.
      expect((await post({ origin: 'http://evil.example', 'x-fanout-token': acting.token })).status).toBe(
        403,
      );
      // fetch will not set Host: a raw request, as a rebinding page's browser would send it.
      const rebound = await new Promise<number>((resolve, reject) => {
        const req = request(acting.url, { headers: { host: 'evil.example' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(rebound).toBe(421);
      expect((await post({ origin: `http://${host}` })).status).toBe(403);

      const page = await newPage(acting.url);
      await page.waitForSelector('#dead-letters table');
      page.on('dialog', (dialog) => void dialog.accept());
      await page.click('#dead-letters button:has-text("Redrive all")');
      await page.waitForFunction(() =>
        document.querySelector('#redrive-result')?.textContent?.includes('Moved 3'),
      );
      await page.waitForSelector('#dead-letters p:has-text("No dead letters.")');
    } finally {
      await acting.close();
    }
    // The jobs are back on the queue (read once the dashboard has let the state dir go).
    expect(fanout('status', '--state-dir', stateDir).stdout).toMatch(
      /queue 3 waiting, 0 in flight, 0 in the dead-letter queue/,
    );
  }, 120_000);

  it('loads 10,000 finished jobs and filters them (the time is printed)', async () => {
    const state = new MemoryState();
    const runId = 'big-run';
    const t0 = Date.UTC(2026, 10, 30, 8, 0, 0);
    await state.createRun({ runId, budgetMicros: 500_000_000, createdAt: t0 });
    for (let n = 1; n <= 10_000; n++) {
      const jobKey = `acme/repo${n % 7}#${n}`;
      await state.registerJob({ runId, jobKey, title: `Issue ${n}`, registeredAt: t0 });
      const answer = await state.acquireLease(
        runId,
        jobKey,
        { owner: `o${n}`, worker: `worker-${String((n % 20) + 1).padStart(2, '0')}` },
        t0 + n * 50,
        60_000,
      );
      if (answer.kind !== 'acquired') throw new Error('not acquired');
      const failed = n % 97 === 0;
      await state.finishJob(
        { runId, jobKey, owner: `o${n}`, fence: answer.fence },
        {
          status: failed ? 'FAILED' : 'DONE',
          worker: `worker-${String((n % 20) + 1).padStart(2, '0')}`,
          durationMs: 900,
          costMicros: 20_000,
          ...(failed ? { errorCode: 'AGENT_FAILED' as const, errorMessage: `failure ${n}` } : {}),
        },
        t0 + n * 50 + 900,
      );
    }
    const target: Target = {
      description: 'ten thousand jobs in memory',
      state: state as unknown as Target['state'],
      workspaces: new FolderWorkspaceStore(join(dir, 'big-workspaces')),
      queue: {
        send: async () => ({ sent: 0, failed: [] }) as never,
        depth: async () => ({ visible: 0, inFlight: 0, deadLetters: 0 }),
        deadLetters: async () => [],
        redrive: async () => 0,
      },
      deadLetters: async () => [],
      defaultRunId: async () => runId,
      adopt: () => {},
      keepsMessages: true,
      running: false,
      close: async () => {},
    };
    const dashboard = await startDashboard({
      source: new DashboardSource(async () => target, true, target.description),
      assets,
      port: 0,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const started = performance.now();
      await page.goto(dashboard.url);
      await page.waitForFunction(
        () => document.querySelector('#jobs-count')?.textContent === '10000 of 10000 jobs',
        undefined,
        { timeout: 30_000 },
      );
      const loadedMs = performance.now() - started;
      expect(await page.locator('#jobs-table tbody tr').count()).toBe(100);
      const filterStarted = performance.now();
      await page.fill('#jobs-filter', 'acme/repo3#9');
      await page.waitForFunction(
        () =>
          /^\d+ of 10000 jobs$/.test(document.querySelector('#jobs-count')?.textContent ?? '') &&
          document.querySelector('#jobs-count')?.textContent !== '10000 of 10000 jobs',
      );
      const filteredMs = performance.now() - filterStarted;
      const matching = Array.from({ length: 10_000 }, (_, i) => i + 1).filter((n) =>
        `acme/repo${n % 7}#${n}`.includes('acme/repo3#9'),
      ).length;
      expect(await text(page, '#jobs-count')).toBe(`${matching} of 10000 jobs`);
      await page.selectOption('#jobs-status', 'FAILED');
      await page.fill('#jobs-filter', '');
      expect(await text(page, '#jobs-count')).toBe(`${Math.floor(10_000 / 97)} of 10000 jobs`);
      // Sorted by cost, then by issue: the header buttons.
      await page.click('button[data-sort="key"]');
      expect(await page.getAttribute('th:has(button[data-sort="key"])', 'aria-sort')).toBe('ascending');
      console.log(
        `dashboard: 10,000 jobs loaded and listed in ${Math.round(loadedMs)} ms; a filter applied in ${Math.round(filteredMs)} ms`,
      );
      await page.close();
    } finally {
      await dashboard.close();
    }
  }, 120_000);

  it('says when the connection is lost and recovers by itself', async () => {
    const stateDir = join(dir, 'reconnect');
    expect(
      fanout('run', '--mock-issues', '2', '--workers', '1', '--duration', '20ms', '--state-dir', stateDir)
        .code,
    ).toBe(0);
    const first = await localDashboard(stateDir);
    const port = Number(new URL(first.url).port);
    const page = await newPage(first.url);
    await page.waitForFunction(() => document.querySelector('#connection')?.textContent === 'Live');
    await page.waitForSelector('#card-failed');
    const failed = await text(page, '#card-failed .value');
    await first.close();
    await page.waitForFunction(() =>
      document.querySelector('#connection')?.textContent?.startsWith('Connection lost'),
    );
    const second = await localDashboard(stateDir, { port });
    try {
      await page.waitForFunction(
        () => document.querySelector('#connection')?.textContent === 'Live',
        undefined,
        { timeout: 20_000 },
      );
      expect(await text(page, '#card-failed .value')).toBe(failed);
    } finally {
      await second.close();
    }
  }, 60_000);

  it('shows a deployed stack with the AWS SDK stubbed (state on dynalite): its jobs, and its dead letters only when asked', async () => {
    const engine = await startState('dash-stack-table');
    const cloudFormation = mockClient(CloudFormationClient);
    const sqs = mockClient(SQSClient);
    try {
      cloudFormation.on(DescribeStacksCommand).resolves(
        fanoutStack({
          QueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/jobs',
          DeadLetterQueueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/dlq',
          TableName: 'dash-stack-table',
          BucketName: 'dash-bucket',
        }),
      );
      sqs.on(GetQueueAttributesCommand).resolves({
        Attributes: { ApproximateNumberOfMessages: '4', ApproximateNumberOfMessagesNotVisible: '2' },
      });
      const state = engine.state;
      await state.createRun({ runId: 'aws-run', budgetMicros: 50_000_000, createdAt: Date.now() });
      for (const n of [1, 2, 3])
        await state.registerJob({
          runId: 'aws-run',
          jobKey: `acme/api#${n}`,
          title: `Issue ${n}`,
          registeredAt: Date.now(),
        });
      await state.addJobCount('aws-run', 3);
      const aws = {
        cloudFormation: new CloudFormationClient({ region: 'us-east-1' }),
        sqs: new SQSClient({ region: 'us-east-1' }),
        dynamodb: embeddedDynamoClient(engine.engine.endpoint),
        s3: undefined as never,
      };
      const source = new DashboardSource(
        () => openTarget({ stack: 'Fanout' }, aws, false),
        true,
        'stack Fanout',
      );
      const dashboard = await startDashboard({ source, assets, port: 0 });
      try {
        const page = await newPage(dashboard.url);
        await page.waitForFunction(
          () => document.querySelector('#jobs-count')?.textContent === '3 of 3 jobs',
        );
        expect(await text(page, '#summary .source')).toContain('aws-run in stack Fanout');
        expect(await text(page, '#card-pending .value')).toBe('3');
        // Reading SQS's dead letters hides them: only on request.
        expect(await page.locator('#list-dead').count()).toBe(1);
        expect(sqs.commandCalls(GetQueueAttributesCommand).length).toBeGreaterThan(0);
        expect(
          sqs.calls().filter((call) => call.args[0].constructor.name === 'ReceiveMessageCommand'),
        ).toHaveLength(0);
      } finally {
        await dashboard.close();
      }
    } finally {
      cloudFormation.restore();
      sqs.restore();
      await engine.close();
    }
  }, 60_000);
});

describe("the dashboard's reads of a stopped local state dir", () => {
  it('opens it only when its queue or current run changed, so it holds the lock a run needs only then', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'fanout-dashboard-reads-'));
    try {
      expect(
        fanout('run', '--mock-issues', '2', '--workers', '1', '--duration', '20ms', '--state-dir', stateDir)
          .code,
      ).toBe(0);
      let opens = 0;
      const source = new DashboardSource(
        async () => {
          opens++;
          return openTarget({ local: true, 'state-dir': stateDir }, undefined, false);
        },
        false,
        'a stopped state dir',
        stateDirSignature(stateDir),
      );
      for (let i = 0; i < 5; i++) expect((await source.view(undefined, false)).status?.totals.jobs).toBe(2);
      expect(opens).toBe(1);
      expect(fanout('send', '--local', '--mock', '3', '--state-dir', stateDir).code).toBe(0);
      // The send made a new run: the dashboard follows it.
      const after = await source.view(undefined, false);
      expect(after.status?.totals.jobs).toBe(3);
      expect(after.runs).toHaveLength(2);
      expect(opens).toBe(2);
      await source.close();
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  }, 60_000);
});
