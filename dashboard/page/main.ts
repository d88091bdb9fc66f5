/**
 * The dashboard's page: one view of a run, live from server-sent events. It draws what the
 * server sends (dashboard/view.ts) and computes nothing of the run's own: the figures are
 * the ones `fanout status` and `fanout report` print.
 */
import { html as diffHtml } from 'diff2html';
import uPlot from 'uplot';
import type { JobDetail } from '../source.js';
import type { DashboardView, JobRow } from '../view.js';
import 'uplot/dist/uPlot.min.css';
import 'diff2html/bundles/css/diff2html.min.css';
import './page.css';

const token = document.querySelector('meta[name="fanout-token"]')?.getAttribute('content') ?? '';

// ---- small helpers ------------------------------------------------------------------------

type Attrs = Record<string, string | number | boolean | undefined>;
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== undefined) node.append(child);
  return node;
}
const usd = (micros: number) => `$${(micros / 1e6).toFixed(micros < 10_000_000 ? 4 : 2)}`;
const ms = (value: number | undefined) =>
  value === undefined
    ? '-'
    : value < 1000
      ? `${Math.round(value)}ms`
      : value < 120_000
        ? `${(value / 1000).toFixed(2)}s`
        : `${Math.floor(value / 60_000)}m ${Math.round((value % 60_000) / 1000)}s`;
const clock = (t: number | undefined) => (t === undefined ? '-' : new Date(t).toLocaleTimeString());
const STATUS_COLOURS: Record<string, string> = {
  DONE: '#1a7f37',
  FAILED: '#cf222e',
  SKIPPED: '#6e7781',
  RUNNING: '#0969da',
  PENDING: '#bf8700',
};

// ---- state ---------------------------------------------------------------------------------

const state = {
  view: undefined as DashboardView | undefined,
  jobs: [] as JobRow[],
  jobsVersion: '',
  run: new URLSearchParams(location.search).get('run') ?? undefined,
  filter: '',
  statusFilter: '',
  sort: { key: 'startedAt' as keyof JobRow, ascending: false },
  page: 0,
  selected: new Set<string>(),
};
const PAGE_SIZE = 100;

// ---- layout --------------------------------------------------------------------------------

const connection = el('p', { id: 'connection', role: 'status', 'aria-live': 'polite' }, 'Connecting...');
const runPicker = el('select', { id: 'run', 'aria-label': 'Run' });
const summary = el('section', { id: 'summary', 'aria-label': 'Summary' });
const fleet = el('canvas', {
  id: 'fleet-canvas',
  role: 'img',
  'aria-label': 'Each worker slot with its jobs over time',
});
const fleetTip = el('div', { id: 'fleet-tip', role: 'tooltip', hidden: true });
const budgetChart = el('div', { id: 'budget-chart' });
const budgetFacts = el('div', { id: 'budget-facts' });
const throughputChart = el('div', { id: 'throughput-chart' });
const queueChart = el('div', { id: 'queue-chart' });
const throughputFacts = el('div', { id: 'throughput-facts' });
const jobsFilter = el('input', {
  id: 'jobs-filter',
  type: 'search',
  placeholder: 'Filter: issue, repository, error, worker',
});
const jobsStatus = el(
  'select',
  { id: 'jobs-status', 'aria-label': 'Status' },
  ...['', 'PENDING', 'RUNNING', 'DONE', 'FAILED', 'SKIPPED'].map((s) =>
    el('option', { value: s }, s || 'any status'),
  ),
);
const jobsTable = el('table', { id: 'jobs-table' });
const jobsPager = el('nav', { id: 'jobs-pager', 'aria-label': 'Pages of jobs' });
const jobsCount = el('p', { id: 'jobs-count', role: 'status' });
const deadTable = el('div', { id: 'dead-letters' });
/** Outside the dead letters' table, which each view redraws: what the last redrive did. */
const redriveResult = el('p', { id: 'redrive-result', role: 'status' });
const jobPanel = el('section', { id: 'job', 'aria-label': 'Job', hidden: true });

const section = (id: string, title: string, ...children: Node[]) =>
  el(
    'section',
    { id, 'aria-labelledby': `${id}-title` },
    el('h2', { id: `${id}-title` }, title),
    ...children,
  );

document
  .getElementById('app')
  ?.replaceChildren(
    el('header', {}, el('h1', {}, 'fanout'), el('label', { for: 'run' }, 'Run '), runPicker, connection),
    el(
      'nav',
      { 'aria-label': 'Sections' },
      ...['fleet', 'budget', 'throughput', 'jobs', 'dead'].map((id) =>
        el(
          'a',
          { href: `#${id}` },
          { fleet: 'Fleet', budget: 'Budget', throughput: 'Throughput', jobs: 'Jobs', dead: 'Dead letters' }[
            id
          ] as string,
        ),
      ),
    ),
    el(
      'main',
      {},
      summary,
      jobPanel,
      section(
        'fleet',
        'Fleet',
        el(
          'p',
          { class: 'hint' },
          'One lane per worker; each bar is a job from its start to its end, coloured by outcome. On a bar, ×n: its attempts (each retry and each continuation takes one); ↻n: the invocations it continued over.',
        ),
        el(
          'div',
          { class: 'legend' },
          ...Object.entries(STATUS_COLOURS).map(([s, c]) =>
            el('span', {}, el('i', { style: `background:${c}` }), s),
          ),
        ),
        el('div', { class: 'fleet-wrap' }, fleet, fleetTip),
      ),
      section(
        'budget',
        'Budget',
        el(
          'p',
          { class: 'hint' },
          'Spent and reserved over time against the budget; the projection is the cost so far per finished job times all the jobs.',
        ),
        budgetChart,
        budgetFacts,
      ),
      section(
        'throughput',
        'Throughput',
        el('p', { class: 'hint' }, 'Jobs finished each minute; below, the queue: waiting and in flight.'),
        throughputChart,
        queueChart,
        throughputFacts,
      ),
      section(
        'jobs',
        'Jobs',
        el(
          'div',
          { class: 'filters' },
          el('label', { for: 'jobs-filter' }, 'Filter '),
          jobsFilter,
          el('label', { for: 'jobs-status' }, ' Status '),
          jobsStatus,
        ),
        jobsCount,
        jobsTable,
        jobsPager,
      ),
      section('dead', 'Dead letters', deadTable, redriveResult),
    ),
  );

// ---- connection: server-sent events, reconnecting by themselves ----------------------------

let events: EventSource | undefined;
function connect(): void {
  events?.close();
  events = new EventSource(`/api/events${state.run ? `?run=${encodeURIComponent(state.run)}` : ''}`);
  events.onopen = () => {
    connection.textContent = 'Live';
    connection.className = 'live';
  };
  events.onerror = () => {
    connection.textContent = 'Connection lost: reconnecting...';
    connection.className = 'lost';
  };
  events.onmessage = (message) => {
    const data = JSON.parse(message.data) as DashboardView | { error: string };
    connection.textContent = 'Live';
    connection.className = 'live';
    if ('error' in data) {
      summary.replaceChildren(el('p', { class: 'error', role: 'alert' }, data.error));
      return;
    }
    state.view = data;
    render();
    void refreshJobs();
  };
}

async function refreshJobs(): Promise<void> {
  const view = state.view;
  if (!view?.runId || view.jobsVersion === state.jobsVersion) return;
  const response = await fetch(`/api/jobs?run=${encodeURIComponent(view.runId)}`);
  if (!response.ok) return;
  const body = (await response.json()) as { version: string; rows: JobRow[] };
  state.jobs = body.rows;
  state.jobsVersion = body.version;
  renderFleet();
  renderJobs();
}

// ---- views ---------------------------------------------------------------------------------

function render(): void {
  const view = state.view;
  if (!view) return;
  runPicker.replaceChildren(
    el('option', { value: '', selected: !state.run }, 'follow the newest'),
    ...view.runs.map((run) =>
      el(
        'option',
        { value: run.runId, selected: run.runId === state.run },
        `${run.runId} (${run.jobCount} jobs)`,
      ),
    ),
  );
  if (!view.status || !view.runId) {
    summary.replaceChildren(
      el('p', {}, `No run yet in ${view.source}: start one with fanout run or fanout send.`),
    );
    return;
  }
  const s = view.status;
  const t = s.totals;
  const card = (label: string, value: string, id: string) =>
    el(
      'div',
      { class: 'card', id: `card-${id}` },
      el('span', { class: 'label' }, label),
      el('span', { class: 'value' }, value),
    );
  summary.replaceChildren(
    el('p', { class: 'source' }, `${view.runId} in ${view.source}${s.running ? '' : ' (not running)'}`),
    el(
      'div',
      { class: 'cards' },
      card('Done', String(t.DONE), 'done'),
      card('Failed', String(t.FAILED), 'failed'),
      card('Skipped', String(t.SKIPPED), 'skipped'),
      card('Running', String(t.RUNNING), 'running'),
      card('Waiting', String(t.PENDING), 'pending'),
      card('Spent', `${usd(s.ledger.spentMicros)} of ${usd(s.ledger.budgetMicros)}`, 'spent'),
      card('Reserved', usd(s.ledger.reservedMicros), 'reserved'),
      card('Jobs a minute', s.throughputPerMinute.toFixed(1), 'rate'),
      card('Time left', s.etaMs === undefined ? '-' : ms(s.etaMs), 'eta'),
    ),
  );
  renderBudget();
  renderThroughput();
  renderFleet();
  renderDead();
}

let budgetPlot: uPlot | undefined;
function renderBudget(): void {
  const b = state.view?.budget;
  if (!b) return;
  // One time axis for spent (from the jobs' ends) and reserved (from the server's reads).
  const times = [...new Set([...b.spent.map(([t]) => t), ...b.samples.map(([t]) => t)])].sort(
    (x, y) => x - y,
  );
  const at = <T extends readonly number[]>(series: readonly T[], t: number, pick: (p: T) => number) => {
    let value: number | null = null;
    for (const point of series) if ((point[0] as number) <= t) value = pick(point);
    return value;
  };
  const data: uPlot.AlignedData = [
    times.map((t) => t / 1000),
    times.map((t) => (at(b.spent, t, (p) => p[1]) ?? 0) / 1e6),
    times.map((t) => {
      const v = at(b.samples, t, (p) => p[1] + p[2]);
      return v === null ? null : v / 1e6;
    }),
    times.map(() => b.budgetMicros / 1e6),
    times.map(() => (b.projectedMicros ?? Number.NaN) / 1e6),
  ];
  const opts: uPlot.Options = {
    width: Math.min(900, budgetChart.clientWidth || 900),
    height: 260,
    series: [
      {},
      {
        label: 'spent',
        stroke: '#1a7f37',
        width: 2,
        value: (_u, v) => (v == null ? '-' : `$${v.toFixed(4)}`),
      },
      {
        label: 'spent + reserved',
        stroke: '#0969da',
        dash: [4, 4],
        value: (_u, v) => (v == null ? '-' : `$${v.toFixed(4)}`),
      },
      {
        label: 'budget',
        stroke: '#cf222e',
        width: 2,
        value: (_u, v) => (v == null ? '-' : `$${v.toFixed(2)}`),
      },
      {
        label: 'projected',
        stroke: '#bf8700',
        dash: [8, 4],
        value: (_u, v) => (v == null || Number.isNaN(v) ? '-' : `$${v.toFixed(4)}`),
      },
    ],
    axes: [{}, { values: (_u, ticks) => ticks.map((v) => `$${v}`) }],
  };
  if (budgetPlot) budgetPlot.setData(data);
  else budgetPlot = new uPlot(opts, data, budgetChart);
  budgetFacts.replaceChildren(
    el(
      'p',
      { id: 'budget-line' },
      `Budget ${usd(b.budgetMicros)}; projected at completion ${b.projectedMicros === undefined ? '- (nothing finished yet)' : usd(b.projectedMicros)}.`,
    ),
    table(
      ['Repository', 'Cost'],
      b.byRepository.map((r) => [r.repo, usd(r.costMicros)]),
      'Cost by repository',
    ),
    table(
      ['Model', 'Cost'],
      b.byModel.map((m) => [m.model, usd(m.costMicros)]),
      'Cost by model (the one that finished each job)',
    ),
  );
}

let throughputPlot: uPlot | undefined;
let queuePlot: uPlot | undefined;
function renderThroughput(): void {
  const view = state.view;
  const tp = view?.throughput;
  if (!tp || !view) return;
  const data: uPlot.AlignedData = [tp.perMinute.map(([t]) => t / 1000), tp.perMinute.map(([, n]) => n)];
  // The minutes shown, and half a minute either side for the bars' width.
  const first = (tp.perMinute[0]?.[0] ?? 0) / 1000;
  const last = (tp.perMinute.at(-1)?.[0] ?? 0) / 1000;
  if (throughputPlot) throughputPlot.setData(data);
  else if (data[0].length > 0)
    throughputPlot = new uPlot(
      {
        width: Math.min(900, throughputChart.clientWidth || 900),
        height: 200,
        scales: {
          x: { time: true, range: (_u, min, max) => [Math.min(min, first) - 30, Math.max(max, last) + 30] },
        },
        series: [
          {},
          {
            label: 'jobs finished a minute',
            stroke: '#0969da',
            fill: 'rgba(9,105,218,0.15)',
            paths: uPlot.paths.bars?.({ size: [0.8] }),
          },
        ],
      },
      data,
      throughputChart,
    );
  // The queue's depths at each of the server's reads since it started.
  const depths: uPlot.AlignedData = [
    tp.queue.map(([t]) => t / 1000),
    tp.queue.map(([, waiting]) => waiting),
    tp.queue.map(([, , inFlight]) => inFlight),
  ];
  if (queuePlot) queuePlot.setData(depths);
  else if (depths[0].length > 0)
    queuePlot = new uPlot(
      {
        width: Math.min(900, queueChart.clientWidth || 900),
        height: 160,
        series: [
          {},
          { label: 'waiting', stroke: '#bf8700', width: 2 },
          { label: 'in flight', stroke: '#0969da', width: 2 },
        ],
      },
      depths,
      queueChart,
    );
  const q = view.status?.queue;
  const f = view.finished;
  throughputFacts.replaceChildren(
    el(
      'p',
      { id: 'throughput-line' },
      `${tp.perMinuteNow.toFixed(1)} jobs a minute now; ${q ? `${q.visible} waiting, ${q.inFlight} in flight, ${q.deadLetters} dead letters` : ''}; time left ${tp.etaMs === undefined ? '-' : ms(tp.etaMs)}.`,
    ),
    ...(f
      ? [
          el(
            'p',
            { id: 'finished-line' },
            `Finished: wall ${ms(f.wallMs)}, serial ${ms(f.serialMs)}, ideal ${ms(f.idealMs)}; speedup ${f.speedup.toFixed(2)}x, efficiency ${(f.efficiency * 100).toFixed(1)}% of the ideal makespan${f.caveat ? ` (${f.caveat})` : ''}.`,
          ),
        ]
      : []),
  );
}

/** The fleet as a Gantt chart on a canvas: a lane per worker slot, a bar per job. */
let bars: { x: number; y: number; w: number; h: number; job: JobRow }[] = [];
function renderFleet(): void {
  const view = state.view;
  if (!view?.status) return;
  const started = state.jobs.filter((job) => job.startedAt !== undefined && job.worker);
  const lanes = [
    ...new Set([...view.status.workers.map((w) => w.workerId), ...started.map((j) => j.worker as string)]),
  ].sort();
  const now = view.at;
  const from = Math.min(now, ...started.map((j) => j.startedAt as number));
  // A run that works reaches now; one that stopped, its last job's end.
  const live = view.status.running || started.some((j) => j.finishedAt === undefined);
  const to = Math.max(from + 1000, live ? now : Math.max(...started.map((j) => j.finishedAt ?? from)));
  const width = Math.max(300, fleet.parentElement?.clientWidth ?? 900);
  const laneHeight = 22;
  const left = 90;
  fleet.width = width * devicePixelRatio;
  fleet.height = (lanes.length * laneHeight + 24) * devicePixelRatio;
  fleet.style.width = `${width}px`;
  fleet.style.height = `${lanes.length * laneHeight + 24}px`;
  const g = fleet.getContext('2d');
  if (!g) return;
  g.scale(devicePixelRatio, devicePixelRatio);
  g.clearRect(0, 0, width, lanes.length * laneHeight + 24);
  g.font = '12px system-ui, sans-serif';
  const x = (t: number) => left + ((t - from) / (to - from)) * (width - left - 10);
  bars = [];
  lanes.forEach((lane, i) => {
    g.fillStyle = '#24292f';
    g.fillText(lane, 4, i * laneHeight + 15);
    g.fillStyle = i % 2 ? '#f6f8fa' : '#ffffff';
    g.fillRect(left, i * laneHeight, width - left, laneHeight);
  });
  for (const job of started) {
    const lane = lanes.indexOf(job.worker as string);
    const x0 = x(job.startedAt as number);
    const x1 = Math.max(x0 + 2, x(job.finishedAt ?? now));
    const bar = { x: x0, y: lane * laneHeight + 3, w: x1 - x0, h: laneHeight - 6, job };
    bars.push(bar);
    g.fillStyle = STATUS_COLOURS[job.status] ?? '#57606a';
    g.fillRect(bar.x, bar.y, bar.w, bar.h);
    const marks = [
      job.attempts > 1 ? `×${job.attempts}` : '',
      job.invocations ? `↻${job.invocations}` : '',
    ].filter(Boolean);
    if (marks.length > 0 && bar.w > 16) {
      g.fillStyle = '#ffffff';
      g.fillText(marks.join(' '), bar.x + 3, bar.y + 12);
    }
  }
  g.fillStyle = '#57606a';
  g.fillText(clock(from), left, lanes.length * laneHeight + 16);
  const end = clock(to);
  g.fillText(end, width - 10 - g.measureText(end).width, lanes.length * laneHeight + 16);
  fleet.setAttribute('data-bars', String(bars.length));
  fleet.setAttribute('data-lanes', String(lanes.length));
}
fleet.addEventListener('mousemove', (event) => {
  const box = fleet.getBoundingClientRect();
  const px = event.clientX - box.left;
  const py = event.clientY - box.top;
  const hit = bars.find((b) => px >= b.x && px <= b.x + b.w && py >= b.y && py <= b.y + b.h);
  fleetTip.hidden = !hit;
  if (!hit) return;
  const j = hit.job;
  fleetTip.textContent = `${j.key} ${j.status}${j.errorCode ? ` (${j.errorCode})` : ''}, ${j.attempts} attempt(s)${j.invocations ? ` over ${j.invocations} invocations` : ''}, ${ms(j.durationMs)}, ${usd(j.costMicros)}`;
  fleetTip.style.left = `${px + 12}px`;
  fleetTip.style.top = `${py + 12}px`;
});
fleet.addEventListener('click', (event) => {
  const box = fleet.getBoundingClientRect();
  const hit = bars.find(
    (b) =>
      event.clientX - box.left >= b.x &&
      event.clientX - box.left <= b.x + b.w &&
      event.clientY - box.top >= b.y &&
      event.clientY - box.top <= b.y + b.h,
  );
  if (hit) location.hash = `job=${encodeURIComponent(hit.job.key)}`;
});

function table(header: string[], rows: (string | Node)[][], caption: string): HTMLTableElement {
  return el(
    'table',
    {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...header.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...rows.map((row) => el('tr', {}, ...row.map((cell) => el('td', {}, cell))))),
  );
}

const COLUMNS: [keyof JobRow, string][] = [
  ['key', 'Issue'],
  ['status', 'Status'],
  ['errorCode', 'Error'],
  ['attempts', 'Attempts'],
  ['durationMs', 'Duration'],
  ['costMicros', 'Cost'],
  ['worker', 'Worker'],
  ['repo', 'Repository'],
  ['startedAt', 'Started'],
];

/** The jobs table: filtered, sorted and a page of 100 at a time, so 10,000 jobs stay quick. */
function renderJobs(): void {
  const needle = state.filter.toLowerCase();
  const matching = state.jobs.filter(
    (job) =>
      (!state.statusFilter || job.status === state.statusFilter) &&
      (!needle ||
        `${job.key} ${job.title} ${job.errorCode ?? ''} ${job.errorMessage ?? ''} ${job.worker ?? ''}`
          .toLowerCase()
          .includes(needle)),
  );
  const { key, ascending } = state.sort;
  matching.sort((a, b) => {
    const x = a[key] ?? '';
    const y = b[key] ?? '';
    const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return ascending ? order : -order;
  });
  const pages = Math.max(1, Math.ceil(matching.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  const shown = matching.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  jobsCount.textContent = `${matching.length} of ${state.jobs.length} jobs`;
  jobsTable.replaceChildren(
    el('caption', {}, 'Jobs: choose a column to sort by it; an issue opens the job.'),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...COLUMNS.map(([column, label]) => {
          const sorted = state.sort.key === column;
          const button = el(
            'button',
            { type: 'button', 'data-sort': column },
            label,
            sorted ? (ascending ? ' ▲' : ' ▼') : '',
          );
          button.addEventListener('click', () => {
            state.sort = { key: column, ascending: sorted ? !ascending : true };
            renderJobs();
          });
          return el(
            'th',
            { scope: 'col', 'aria-sort': sorted ? (ascending ? 'ascending' : 'descending') : 'none' },
            button,
          );
        }),
      ),
    ),
    el(
      'tbody',
      {},
      ...shown.map((job) =>
        el(
          'tr',
          { class: `status-${job.status}` },
          el('td', {}, el('a', { href: `#job=${encodeURIComponent(job.key)}` }, job.key)),
          el('td', {}, job.status + (job.verdict ? ` (${job.verdict})` : '')),
          el(
            'td',
            { title: job.errorMessage ?? '' },
            job.errorCode ? `${job.errorCode}: ${job.errorMessage ?? ''}` : '',
          ),
          el('td', {}, String(job.attempts)),
          el('td', {}, ms(job.durationMs)),
          el('td', {}, usd(job.costMicros)),
          el('td', {}, job.worker ?? '-'),
          el('td', {}, job.repo),
          el('td', {}, clock(job.startedAt)),
        ),
      ),
    ),
  );
  jobsPager.replaceChildren(
    ...(pages > 1
      ? [
          pagerButton('Previous', state.page > 0, () => state.page--),
          el('span', {}, ` page ${state.page + 1} of ${pages} `),
          pagerButton('Next', state.page < pages - 1, () => state.page++),
        ]
      : []),
  );
}
const pagerButton = (label: string, enabled: boolean, move: () => void) => {
  const button = el('button', { type: 'button', disabled: !enabled }, label);
  button.addEventListener('click', () => {
    move();
    renderJobs();
  });
  return button;
};
jobsFilter.addEventListener('input', () => {
  state.filter = jobsFilter.value;
  state.page = 0;
  renderJobs();
});
jobsStatus.addEventListener('change', () => {
  state.statusFilter = jobsStatus.value;
  state.page = 0;
  renderJobs();
});
runPicker.addEventListener('change', () => {
  state.run = runPicker.value || undefined;
  const url = new URL(location.href);
  if (state.run) url.searchParams.set('run', state.run);
  else url.searchParams.delete('run');
  history.replaceState(null, '', url);
  state.jobsVersion = '';
  connect();
});

let listedLetters: DashboardView['deadLetters'] | undefined;
function renderDead(): void {
  const view = state.view;
  if (!view) return;
  const count = view.status?.queue.deadLetters ?? 0;
  if (!view.deadLettersListed && listedLetters === undefined) {
    const list = el('button', { type: 'button', id: 'list-dead' }, 'List them');
    list.addEventListener('click', async () => {
      const response = await fetch(
        `/api/dead-letters${view.runId ? `?run=${encodeURIComponent(view.runId)}` : ''}`,
      );
      listedLetters = response.ok ? ((await response.json()) as DashboardView['deadLetters']) : [];
      renderDead();
    });
    deadTable.replaceChildren(
      el(
        'p',
        {},
        `${count} message${count === 1 ? '' : 's'} in the dead-letter queue. Listing them reads them from SQS, which hides them from other readers for a while. `,
        list,
      ),
    );
    return;
  }
  const letters = listedLetters ?? view.deadLetters;
  if (letters.length === 0) {
    deadTable.replaceChildren(el('p', {}, 'No dead letters.'));
    return;
  }
  const boxes = letters.map((letter) => {
    const box = el('input', {
      type: 'checkbox',
      'aria-label': `Select ${letter.jobKey ?? letter.id}`,
      checked: state.selected.has(letter.id),
    });
    box.addEventListener('change', () => {
      if (box.checked) state.selected.add(letter.id);
      else state.selected.delete(letter.id);
    });
    return box;
  });
  const button = (label: string, ids: () => string[] | 'all') => {
    const b = el('button', { type: 'button', disabled: !view.actions }, label);
    b.addEventListener('click', () => void redrive(ids()));
    return b;
  };
  deadTable.replaceChildren(
    table(
      ['', 'Job', 'Code', 'Reason', 'Deliveries', 'At', ''],
      letters.map((letter, i) => {
        const one = el('button', { type: 'button', disabled: !view.actions }, 'Redrive');
        one.addEventListener('click', () => void redrive([letter.id]));
        return [
          boxes[i] as Node,
          letter.jobKey ?? letter.id,
          letter.code,
          letter.reason,
          String(letter.receiveCount),
          clock(letter.at),
          one,
        ];
      }),
      'Messages the queue gave up on, with why',
    ),
    el(
      'p',
      {},
      button('Redrive selected', () => [...state.selected]),
      ' ',
      button('Redrive all', () => 'all'),
      view.actions ? '' : ' Actions are off: start the dashboard with --allow-actions to redrive from here.',
    ),
  );
}

async function redrive(ids: string[] | 'all'): Promise<void> {
  const count = ids === 'all' ? (listedLetters ?? state.view?.deadLetters ?? []).length : ids.length;
  if (count === 0) return;
  if (!confirm(`Move ${count} dead letter${count === 1 ? '' : 's'} back onto the queue?`)) return;
  const response = await fetch('/api/redrive', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-fanout-token': token },
    body: JSON.stringify(ids === 'all' ? { all: true } : { ids }),
  });
  const body = (await response.json()) as { moved?: number; error?: string };
  redriveResult.textContent = response.ok
    ? `Moved ${body.moved} back onto the queue.`
    : `Refused: ${body.error}`;
  state.selected.clear();
  if (response.ok && listedLetters)
    listedLetters = listedLetters.filter((l) => ids !== 'all' && !ids.includes(l.id));
}

// ---- one job -------------------------------------------------------------------------------

type Block = {
  text?: string;
  toolUse?: { name: string; input: unknown };
  toolResult?: { content: { text: string }[]; status: string };
};

function transcriptView(messages: unknown[], label: string): HTMLElement {
  return el(
    'details',
    { open: true },
    el('summary', {}, label),
    el(
      'ol',
      { class: 'transcript' },
      ...(messages as { role: string; content: Block[] }[]).map((message) =>
        el(
          'li',
          { class: `role-${message.role}` },
          el('span', { class: 'role' }, message.role === 'assistant' ? 'model' : 'fanout'),
          ...message.content.map((block) => {
            if (block.text !== undefined) return el('pre', { class: 'text' }, block.text);
            if (block.toolUse)
              return el(
                'div',
                { class: 'tool-call' },
                el(
                  'code',
                  {},
                  `${block.toolUse.name}(${Object.entries(block.toolUse.input as Record<string, unknown>)
                    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
                    .join(', ')})`,
                ),
              );
            if (block.toolResult)
              return el(
                'details',
                { class: `tool-result ${block.toolResult.status}` },
                el('summary', {}, `result (${block.toolResult.status})`),
                el('pre', {}, block.toolResult.content.map((c) => c.text).join('\n')),
              );
            return el('pre', {}, JSON.stringify(block));
          }),
        ),
      ),
    ),
  );
}

async function showJob(key: string): Promise<void> {
  const runId = state.view?.runId;
  if (!runId) return;
  jobPanel.hidden = false;
  jobPanel.replaceChildren(el('p', {}, `Loading ${key}...`));
  const response = await fetch(`/api/job?run=${encodeURIComponent(runId)}&key=${encodeURIComponent(key)}`);
  const job = (await response.json()) as JobDetail & { error?: string };
  if (!response.ok) {
    jobPanel.replaceChildren(el('p', { class: 'error', role: 'alert' }, job.error ?? 'not found'));
    return;
  }
  const r = job.row;
  const close = el('button', { type: 'button', id: 'job-close' }, 'Close');
  close.addEventListener('click', () => {
    history.replaceState(null, '', location.pathname + location.search);
    jobPanel.hidden = true;
  });
  const diff = el('div', { class: 'diff' });
  if (job.diff)
    diff.innerHTML = diffHtml(job.diff, {
      drawFileList: false,
      outputFormat: 'line-by-line',
      matching: 'lines',
    });
  const start = r.startedAt;
  const end = r.finishedAt ?? Date.now();
  jobPanel.replaceChildren(
    el('h2', { id: 'job-title' }, `${r.key}: ${r.title}`, ' ', close),
    el(
      'dl',
      { class: 'facts' },
      el('dt', {}, 'Status'),
      el('dd', { id: 'job-status' }, `${r.status}${r.verdict ? ` (${r.verdict})` : ''}`),
      ...(r.errorCode
        ? [
            el('dt', {}, 'Error'),
            el('dd', { id: 'job-error', class: 'error' }, `${r.errorCode}: ${r.errorMessage ?? ''}`),
          ]
        : []),
      el('dt', {}, 'Attempts'),
      el(
        'dd',
        { id: 'job-attempts' },
        `${r.attempts}${r.invocations ? `, the last continued over ${r.invocations} invocations` : ''}, on ${r.worker ?? '-'}; ${ms(r.durationMs)} of work, ${usd(r.costMicros)}${r.model ? ` (${r.model})` : ''}`,
      ),
      el('dt', {}, 'Timeline'),
      el(
        'dd',
        {},
        start === undefined
          ? 'not started'
          : el(
              'span',
              { class: 'timeline' },
              `${clock(start)} → ${r.finishedAt ? clock(end) : 'now'} (${ms(end - start)})`,
            ),
      ),
      el('dt', {}, 'Workspace'),
      el('dd', {}, el('code', { id: 'job-workspace' }, job.location)),
      ...(job.published?.url
        ? [
            el('dt', {}, 'Published'),
            el('dd', {}, el('a', { href: job.published.url, rel: 'noreferrer' }, job.published.url)),
          ]
        : []),
    ),
    el('h3', {}, 'Issue'),
    el('pre', { class: 'issue' }, job.issue?.body ?? '(the issue text is not stored for this job)'),
    ...(job.transcript
      ? [
          el('h3', {}, 'Transcript'),
          transcriptView(job.transcript, `The agent: ${job.transcript.length} messages`),
        ]
      : []),
    ...(job.reviewTranscript
      ? [transcriptView(job.reviewTranscript, `The reviewer: ${job.reviewTranscript.length} messages`)]
      : []),
    ...(job.diff ? [el('h3', {}, 'Diff'), diff] : []),
    ...(job.verification
      ? [el('h3', {}, 'Verification'), el('pre', {}, JSON.stringify(job.verification, null, 2))]
      : []),
  );
  jobPanel.scrollIntoView();
}

function route(): void {
  const match = /^#job=(.+)$/.exec(location.hash);
  if (match) void showJob(decodeURIComponent(match[1] as string));
}
addEventListener('hashchange', route);
connect();
setTimeout(route, 300);
