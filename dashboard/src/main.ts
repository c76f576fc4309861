import './styles.css';
import type uPlot from 'uplot';
import { Alert, api, ApiError, apiKey, AuthRequiredError, BillingExport, Breakdown, download, Latency, Overall, QuotaStatus, Task, TaskStats, Timeseries, UsageRecord, whoami } from './api';
import { bars, lineChart, PALETTE, sparkline, stackedChart } from './charts';
import { Child, clear, h } from './dom';
import { addUsd, duration, ms, num, pct, usdText, usdTitle, when } from './format';
import { Column, sortableTable } from './table';

/* ---------- settings: time range, auto-refresh, theme ---------- */

const RANGES: { value: string; label: string; days: number }[] = [
  { value: '1', label: 'Last 24 h', days: 1 },
  { value: '7', label: 'Last 7 days', days: 7 },
  { value: '30', label: 'Last 30 days', days: 30 },
];
const settings = {
  days: Number(localStorage.getItem('asa-dashboard-days') ?? 7) || 7,
  refreshSeconds: Number(localStorage.getItem('asa-dashboard-refresh') ?? 60),
  theme: (localStorage.getItem('asa-dashboard-theme') ?? 'auto') as 'auto' | 'light' | 'dark',
};
const save = () => {
  localStorage.setItem('asa-dashboard-days', String(settings.days));
  localStorage.setItem('asa-dashboard-refresh', String(settings.refreshSeconds));
  localStorage.setItem('asa-dashboard-theme', settings.theme);
};
const applyTheme = () => {
  document.documentElement.dataset.theme = settings.theme;
};

/* ---------- shared bits ---------- */

const money = (exact: string | null | undefined, testId?: string) => h('span', { class: 'money', title: usdTitle(exact), 'data-exact': exact ?? '', 'data-testid': testId }, usdText(exact));

function card(label: string, value: Child, opts: { testId?: string; hint?: string } = {}): HTMLElement {
  return h('div', { class: 'card', 'data-testid': opts.testId }, h('div', { class: 'card-label', title: opts.hint }, label), h('div', { class: 'card-value' }, value));
}

function section(title: string, ...body: Child[]): HTMLElement {
  return h('section', { class: 'panel' }, h('h2', {}, title), ...body);
}

const empty = (text: string) => h('p', { class: 'empty' }, text);

const badge = (status: string) => h('span', { class: `badge badge-${status}` }, status);

const charts: { chart: uPlot; el: HTMLElement }[] = [];
function chartBox(draw: (el: HTMLElement) => uPlot): HTMLElement {
  const el = h('div', { class: 'chart' });
  // Drawn once the box is in the page, so it knows its width.
  requestAnimationFrame(() => {
    if (!el.isConnected) return;
    charts.push({ chart: draw(el), el });
  });
  return el;
}
window.addEventListener('resize', () => {
  for (const c of charts) if (c.el.isConnected) c.chart.setSize({ width: Math.max(280, c.el.clientWidth), height: c.chart.height });
});

function interval(days: number): 'hour' | 'day' {
  return days <= 7 ? 'hour' : 'day';
}

/** Every bucket of the window, empty ones too (the API leaves those out), as Unix seconds for uPlot. */
function bucketGrid(ts: Timeseries): number[] {
  const width = ts.interval === 'hour' ? 3_600_000 : 86_400_000;
  const first = Math.floor(Date.parse(ts.from) / width) * width;
  const out: number[] = [];
  for (let t = first; t <= Date.parse(ts.to); t += width) out.push(t / 1000);
  return out;
}

/** Per group key, its values per bucket of the grid. */
function groupSeries(ts: Timeseries, pick: (b: Breakdown) => number): Map<string, number[]> {
  const grid = bucketGrid(ts);
  const index = new Map(grid.map((t, i) => [t * 1000, i]));
  const out = new Map<string, number[]>();
  for (const b of ts.buckets) {
    const i = index.get(Date.parse(b.start));
    if (i === undefined) continue;
    for (const [key, g] of Object.entries(b.groups)) {
      const values = out.get(key) ?? grid.map(() => 0);
      values[i] += pick(g);
      out.set(key, values);
    }
  }
  return out;
}

const usdAxis = (v: number) => (v === 0 ? '$0' : Math.abs(v) < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`);

/* ---------- pages ---------- */

async function overviewPage(): Promise<HTMLElement> {
  const days = settings.days;
  const windows = [...new Set([1, 7, 30, days])];
  const [overalls, ts, stats, latency] = await Promise.all([
    Promise.all(windows.map((d) => api<Overall>('usage/overall', { days: d }))),
    api<Timeseries>('usage/timeseries', { days, interval: interval(days), group_by: 'model' }),
    api<TaskStats>('usage/metrics/tasks', { days }),
    api<Latency>('usage/latency', { days }),
  ]);
  const byDays = new Map(windows.map((d, i) => [d, overalls[i]]));
  const o = byDays.get(days)!;
  const grid = bucketGrid(ts);
  const perModel = [...groupSeries(ts, (g) => g.cost_usd).entries()].sort(([a], [b]) => a.localeCompare(b));
  const requests = grid.map(() => 0);
  const failed = grid.map(() => 0);
  const idx = new Map(grid.map((t, i) => [t * 1000, i]));
  for (const b of ts.buckets) {
    const i = idx.get(Date.parse(b.start));
    if (i !== undefined) {
      requests[i] += b.requests;
      failed[i] += b.failed_requests;
    }
  }
  const unit = ts.interval === 'hour' ? 'hour' : 'day';
  return h(
    'div',
    {},
    h(
      'div',
      { class: 'cards' },
      card('Spend, last 24 h', money(byDays.get(1)!.total_cost_usd_exact, 'spend-1')),
      card('Spend, last 7 days', money(byDays.get(7)!.total_cost_usd_exact, 'spend-7')),
      card('Spend, last 30 days', money(byDays.get(30)!.total_cost_usd_exact, 'spend-30')),
    ),
    h(
      'div',
      { class: 'cards' },
      card(`Spend in range (${rangeLabel()})`, money(o.total_cost_usd_exact, 'total-cost')),
      card('LLM calls', h('span', { 'data-testid': 'total-requests' }, num(o.total_requests)), { hint: 'failed calls included' }),
      card('Failed calls', h('span', { 'data-testid': 'failed-requests' }, num(o.failed_requests))),
      card('Tokens', h('span', { 'data-testid': 'total-tokens' }, num(o.total_tokens))),
      card('p95 latency', h('span', { 'data-testid': 'p95-latency' }, ms(latency.p95_latency_ms)), { hint: `median ${ms(latency.p50_latency_ms)}; nearest rank over ${num(latency.requests)} calls` }),
      card('Task success rate', h('span', { 'data-testid': 'task-success-rate' }, stats.total_tasks === 0 ? '—' : pct(stats.success_rate_percent)), { hint: 'succeeded ÷ (succeeded + failed) of the tasks created in the range; cancelled tasks are left out' }),
      card(
        'Cost per successful task',
        // A ratio, not a sum of charges: shown to 4 significant digits, the API's figure in the tooltip.
        h('span', { 'data-testid': 'cost-per-success', title: stats.cost_per_successful_task_usd === null ? undefined : `${stats.cost_per_successful_task_usd} USD: cost of all finished tasks (failed ones included) ÷ tasks that succeeded` }, stats.cost_per_successful_task_usd === null ? '—' : `$${Number(stats.cost_per_successful_task_usd.toPrecision(4))}`),
      ),
      card('Unpriced calls', h('span', { 'data-testid': 'unpriced-requests', class: o.unpriced_requests > 0 ? 'warn' : '' }, num(o.unpriced_requests)), { hint: 'calls to models with no known price: their cost is not in the totals' }),
    ),
    section(
      `Cost per ${unit} by model (USD)`,
      perModel.length === 0
        ? empty('No LLM calls in this range.')
        : chartBox((el) => stackedChart(el, grid, perModel.map(([label, values]) => ({ label, values })), { yLabel: `USD per ${unit}`, yFormat: usdAxis })),
    ),
    h(
      'div',
      { class: 'two' },
      section(
        `LLM calls per ${unit}`,
        chartBox((el) => lineChart(el, grid, [{ label: 'calls', values: requests, colour: PALETTE[0] }, { label: 'failed', values: failed, colour: PALETTE[3] }], { yLabel: `calls per ${unit}`, yFormat: (v) => num(v) })),
      ),
      section(
        'Tokens by type',
        bars([
          { label: 'input (uncached)', value: o.input_tokens - o.cached_input_tokens, text: num(o.input_tokens - o.cached_input_tokens) },
          { label: 'cached input', value: o.cached_input_tokens, text: num(o.cached_input_tokens) },
          { label: 'cache write', value: o.cache_write_tokens, text: num(o.cache_write_tokens) },
          { label: 'output (visible)', value: o.output_tokens - o.reasoning_tokens, text: num(o.output_tokens - o.reasoning_tokens) },
          { label: 'reasoning', value: o.reasoning_tokens, text: num(o.reasoning_tokens) },
        ]),
        h('p', { class: 'note' }, `${num(o.estimated_requests)} calls with estimated token counts.`),
      ),
    ),
  );
}

function breakdownPage(kind: 'user' | 'model'): () => Promise<HTMLElement> {
  return async () => {
    const days = settings.days;
    const [o, ts] = await Promise.all([api<Overall>('usage/overall', { days }), api<Timeseries>('usage/timeseries', { days, interval: interval(days), group_by: kind })]);
    const groups = kind === 'user' ? o.by_user : o.by_model;
    const trend = groupSeries(ts, (g) => g.cost_usd);
    const rows = Object.entries(groups).map(([key, b]) => ({ key, ...b }));
    const cols: Column<(typeof rows)[number]>[] = [
      { label: kind === 'user' ? 'User' : 'Model', sort: (r) => r.key, cell: (r) => h('span', { class: 'key' }, r.key) },
      { label: 'Calls', numeric: true, sort: (r) => r.requests, cell: (r) => num(r.requests) },
      { label: 'Tokens', numeric: true, sort: (r) => r.tokens, cell: (r) => num(r.tokens) },
      { label: 'Failed', numeric: true, sort: (r) => r.failed_requests, cell: (r) => num(r.failed_requests) },
      { label: 'Unpriced', numeric: true, sort: (r) => r.unpriced_requests, cell: (r) => num(r.unpriced_requests) },
      // Sorted by the exact amount: the nano-dollar string compared as a number of nano-dollars.
      { label: 'Cost', numeric: true, sort: (r) => Number(r.cost_usd_exact.replace('.', '')), cell: (r) => money(r.cost_usd_exact) },
      { label: 'Trend', cell: (r) => sparkline(trend.get(r.key) ?? [0], `cost per ${ts.interval} of ${r.key}`) },
    ];
    return section(
      `${kind === 'user' ? 'Users' : 'Models'}, ${rangeLabel()}`,
      rows.length === 0 ? empty('No LLM calls in this range.') : sortableTable(`by-${kind}`, cols, rows, { col: 5, desc: true }),
      h('p', { class: 'note' }, kind === 'user' ? 'Calls made without a user are under (none).' : 'Models as the caller asked for them.'),
    );
  };
}

const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const taskFilter = { status: '', user: '', text: '' };

async function tasksPage(): Promise<HTMLElement> {
  const loaded: Task[] = [];
  let cursor: string | null = null;
  const fetchPage = async () => {
    const page = await api<{ tasks: Task[]; next_cursor: string | null }>('tasks', { status: taskFilter.status, user_id: taskFilter.user, limit: 100, cursor: cursor ?? undefined });
    loaded.push(...page.tasks);
    cursor = page.next_cursor;
  };
  await fetchPage();
  const listBox = h('div', {});
  const more = h('button', { type: 'button', class: 'secondary' }, 'Load older tasks');
  const draw = () => {
    const text = taskFilter.text.toLowerCase();
    const rows = loaded.filter((t) => !text || [t.task_id, t.model, t.repo_url, t.user_id ?? '', t.failure_reason ?? ''].some((v) => v.toLowerCase().includes(text)));
    const cols: Column<Task>[] = [
      { label: 'Task', sort: (t) => t.task_id, cell: (t) => h('a', { href: `#/task/${encodeURIComponent(t.task_id)}`, class: 'mono' }, t.task_id.slice(0, 8)) },
      { label: 'Status', sort: (t) => t.status, cell: (t) => [badge(t.status), t.failure_reason ? h('span', { class: 'reason' }, ` ${t.failure_reason}`) : null] },
      { label: 'User', sort: (t) => t.user_id ?? '', cell: (t) => t.user_id ?? '(none)' },
      { label: 'Model', sort: (t) => t.model, cell: (t) => t.model },
      { label: 'Attempts', numeric: true, sort: (t) => t.attempts, cell: (t) => `${t.attempts} / ${t.max_attempts}` },
      { label: 'Cost', numeric: true, sort: (t) => t.cost_usd, cell: (t) => money(t.cost_usd_exact) },
      { label: 'Duration', numeric: true, sort: (t) => t.duration_seconds ?? -1, cell: (t) => duration(t.duration_seconds) },
      { label: 'Created', sort: (t) => t.created_at, cell: (t) => when(t.created_at) },
    ];
    listBox.replaceChildren(rows.length === 0 ? empty('No tasks match.') : sortableTable('tasks', cols, rows, { col: 7, desc: true }));
    more.hidden = cursor === null;
  };
  more.addEventListener('click', async () => {
    more.disabled = true;
    await fetchPage();
    more.disabled = false;
    draw();
  });
  const status = h('select', { 'aria-label': 'status' }, h('option', { value: '' }, 'any status'), TASK_STATUSES.map((s) => h('option', { value: s, selected: taskFilter.status === s }, s)));
  status.addEventListener('change', () => {
    taskFilter.status = status.value;
    void render();
  });
  const user = h('input', { type: 'search', placeholder: 'user id', value: taskFilter.user, 'aria-label': 'user id' });
  user.addEventListener('change', () => {
    taskFilter.user = user.value.trim();
    void render();
  });
  const text = h('input', { type: 'search', placeholder: 'filter: id, model, repository, reason', value: taskFilter.text, 'aria-label': 'filter' });
  text.addEventListener('input', () => {
    taskFilter.text = text.value;
    draw();
  });
  draw();
  return section('Tasks, newest first', h('div', { class: 'filters' }, status, user, text), listBox, more);
}

async function taskPage(id: string): Promise<HTMLElement> {
  const task = await api<Task>(`task/${encodeURIComponent(id)}`);
  const calls: UsageRecord[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const r = await api<{ records: UsageRecord[]; next_cursor: string | null }>('usage/records', { task_id: id, limit: 500, cursor });
    calls.push(...r.records);
    if (!r.next_cursor) break;
    cursor = r.next_cursor;
  }
  calls.reverse(); // the API gives newest first; a task reads in the order its calls happened
  const callsCost = addUsd(calls.map((c) => c.cost_usd_exact));
  const rows = calls.map((c, i) => ({ n: i + 1, ...c }));
  const cols: Column<(typeof rows)[number]>[] = [
    { label: '#', numeric: true, cell: (c) => c.n },
    { label: 'Time', cell: (c) => when(c.created_at) },
    { label: 'Model', cell: (c) => [c.requested_model, c.response_model && c.response_model !== c.requested_model ? h('span', { class: 'reason' }, ` → ${c.response_model}`) : null] },
    { label: 'Input', numeric: true, cell: (c) => num(c.input_tokens) },
    { label: 'Cached', numeric: true, cell: (c) => num(c.cached_input_tokens) },
    { label: 'Output', numeric: true, cell: (c) => num(c.output_tokens) },
    { label: 'Cost', numeric: true, cell: (c) => (c.unpriced ? h('span', { class: 'warn', title: 'model with no known price' }, 'unpriced') : money(c.cost_usd_exact)) },
    { label: 'Latency', numeric: true, cell: (c) => ms(c.latency_ms) },
    { label: 'Status', cell: (c) => [badge(c.status === 'success' ? 'succeeded' : 'failed'), c.error_type ? h('span', { class: 'reason' }, ` ${c.error_type}`) : null, c.estimated ? h('span', { class: 'reason', title: 'token counts estimated locally' }, ' est.') : null] },
  ];
  return h(
    'div',
    {},
    h('p', {}, h('a', { href: '#/tasks' }, '← Tasks')),
    section(
      `Task ${task.task_id}`,
      h(
        'dl',
        { class: 'facts' },
        fact('Status', [badge(task.status), task.stage ? ` (${task.stage})` : '', task.failure_reason ? ` ${task.failure_reason}` : '']),
        fact('User', task.user_id ?? '(none)'),
        fact('Model', task.model),
        fact('Attempts', `${task.attempts} / ${task.max_attempts}`),
        fact('Cost', money(task.cost_usd_exact, 'task-cost')),
        fact('Duration', duration(task.duration_seconds)),
        fact('Repository', h('span', { class: 'mono' }, task.repo_url)),
        fact('Test command', h('span', { class: 'mono' }, task.test_command ?? '')),
        fact('Created', when(task.created_at)),
        fact('Finished', when(task.finished_at)),
      ),
      task.bug_description ? h('p', { class: 'bug' }, task.bug_description) : null,
      task.failure_detail ? h('p', { class: 'warn' }, task.failure_detail) : null,
      task.cost_note ? h('p', { class: 'warn', 'data-testid': 'task-cost-note' }, task.cost_note) : null,
    ),
    section(
      `LLM calls (${calls.length}), in order`,
      calls.length === 0 ? empty('This task made no LLM call.') : h('div', { 'data-testid': 'task-calls' }, sortableTable('task-calls', cols, rows, { col: 0, desc: false })),
      h('p', { class: 'note' }, 'Sum of the calls: ', money(callsCost, 'calls-cost')),
    ),
    section('Patch', task.patch ? h('pre', { class: 'code', 'data-testid': 'task-patch' }, task.patch) : empty('No patch.')),
    section('Test output (tail)', task.test_output_tail ? h('pre', { class: 'code', 'data-testid': 'task-test-output' }, task.test_output_tail) : empty('No test output.')),
  );
}

const fact = (label: string, value: Child) => h('div', {}, h('dt', {}, label), h('dd', {}, value));

async function quotasPage(): Promise<HTMLElement> {
  const [status, alerts] = await Promise.all([
    api<QuotaStatus>('quotas/status'),
    api<{ alerts: Alert[] }>('alerts', { limit: 50 }).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 403) return null; // alerts are for admin keys
      throw err;
    }),
  ]);
  const rows = status.rules.flatMap((r) =>
    r.scope_values.length === 0
      ? [{ rule: r, scope: '—', spend: r.limit_usd === null ? null : '0.000000000', tokens: 0, percent: 0, window: '' }]
      : r.scope_values.map((v) => ({ rule: r, scope: Object.entries(v.scope).map(([k, x]) => `${k}=${x}`).join(' ') || 'all', spend: v.spend_usd, tokens: v.spend_tokens, percent: v.percent, window: v.window.start ? `${v.window.kind} from ${when(v.window.start)}` : v.window.kind })),
  );
  const cols: Column<(typeof rows)[number]>[] = [
    { label: 'Rule', sort: (r) => r.rule.rule_id, cell: (r) => [h('span', { class: 'key' }, r.rule.rule_id), h('span', { class: 'reason' }, ` ${r.rule.action}`)] },
    { label: 'Scope', sort: (r) => r.scope, cell: (r) => r.scope },
    { label: 'Window', cell: (r) => r.window },
    { label: 'Spend', numeric: true, cell: (r) => (r.spend === null ? `${num(r.tokens)} tokens` : money(r.spend)) },
    { label: 'Limit', numeric: true, cell: (r) => (r.rule.limit_usd !== null ? money(r.rule.limit_usd) : `${num(r.rule.limit_tokens)} tokens`) },
    { label: 'Used', numeric: true, sort: (r) => r.percent, cell: (r) => h('span', { class: `meter ${r.percent >= 100 ? 'over' : r.percent >= 80 ? 'near' : ''}` }, h('span', { style: `width:${Math.min(100, r.percent)}%` }), pct(r.percent)) },
  ];
  const alertCols: Column<Alert>[] = [
    { label: 'Fired', sort: (a) => a.fired_at, cell: (a) => when(a.fired_at) },
    { label: 'Rule', sort: (a) => a.rule_id, cell: (a) => a.rule_id },
    { label: 'Scope', cell: (a) => Object.entries(a.scope).map(([k, v]) => `${k}=${v}`).join(' ') || 'all' },
    { label: 'State', sort: (a) => a.state, cell: (a) => badge(a.state) },
    { label: 'Threshold', numeric: true, cell: (a) => `${a.threshold_percent} %` },
    { label: 'Spend', numeric: true, cell: (a) => money(a.spend_usd) },
    { label: 'Deliveries', cell: (a) => a.deliveries.map((d) => `${d.notifier}: ${d.result}`).join(', ') || '—' },
  ];
  return h(
    'div',
    {},
    section('Quotas, current windows', rows.length === 0 ? empty('No quota rules. Add them in config/quotas.json or with POST /api/v1/quotas (README, Quotas).') : sortableTable('quotas', cols, rows, { col: 5, desc: true }), h('p', { class: 'note' }, `Evaluated ${when(status.evaluated_at)}.`)),
    section('Cost alerts', alerts === null ? empty('Alerts are listed for admin keys.') : alerts.alerts.length === 0 ? empty('No alert has fired.') : sortableTable('alerts', alertCols, alerts.alerts, { col: 0, desc: true })),
  );
}

async function billingPage(): Promise<HTMLElement> {
  const { exports } = await api<{ exports: BillingExport[] }>('billing/exports');
  const cols: Column<BillingExport>[] = [
    { label: 'Period', sort: (e) => e.period_start, cell: (e) => `${e.period_start.slice(0, 16)} → ${e.period_end.slice(0, 16)}` },
    { label: 'Kind', sort: (e) => e.kind, cell: (e) => e.kind },
    { label: 'Grouped by', cell: (e) => e.group_by.join(', ') },
    { label: 'Version', numeric: true, cell: (e) => `v${e.version}` },
    { label: 'Status', sort: (e) => e.status, cell: (e) => badge(e.status) },
    { label: 'Rows', numeric: true, cell: (e) => num(e.rows) },
    { label: 'Cost', numeric: true, cell: (e) => money(String(e.totals.cost_usd ?? '')) },
    {
      label: 'File',
      cell: (e) => {
        const b = h('button', { type: 'button', class: 'link' }, e.file_name);
        b.addEventListener('click', () => void download(e.download_url, e.file_name).catch((err: Error) => alert(err.message)));
        return b;
      },
    },
  ];
  return section(
    'Billing exports',
    exports.length === 0 ? empty('No export yet. The daily and monthly exports run on their schedule; POST /api/v1/billing/exports runs one now (README, Billing exports).') : sortableTable('billing', cols, exports, { col: 0, desc: true }),
  );
}

/* ---------- shell and routing ---------- */

const NAV = [
  ['overview', 'Overview'],
  ['users', 'Users'],
  ['models', 'Models'],
  ['tasks', 'Tasks'],
  ['quotas', 'Quotas & alerts'],
  ['billing', 'Billing'],
] as const;

function route(): { name: string; page: () => Promise<HTMLElement>; usesRange: boolean } {
  const path = location.hash.replace(/^#\/?/, '');
  const task = /^task\/(.+)$/.exec(path);
  if (task) return { name: 'tasks', page: () => taskPage(decodeURIComponent(task[1])), usesRange: false };
  switch (path) {
    case 'users':
      return { name: 'users', page: breakdownPage('user'), usesRange: true };
    case 'models':
      return { name: 'models', page: breakdownPage('model'), usesRange: true };
    case 'tasks':
      return { name: 'tasks', page: tasksPage, usesRange: false };
    case 'quotas':
      return { name: 'quotas', page: quotasPage, usesRange: false };
    case 'billing':
      return { name: 'billing', page: billingPage, usesRange: false };
    default:
      return { name: 'overview', page: overviewPage, usesRange: true };
  }
}

function rangeLabel(): string {
  return RANGES.find((r) => r.days === settings.days)?.label.toLowerCase() ?? `last ${settings.days} days`;
}

const root = document.getElementById('app')!;
const main = h('main', { id: 'page' });
const status = h('span', { class: 'status', 'aria-live': 'polite' });
let generation = 0;
/** Set once the API is known to accept this tab's requests (no key needed, or the key was accepted): no data request before. */
let signedIn = false;
const signOut = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Forget key');
signOut.addEventListener('click', () => {
  apiKey.clear();
  location.reload();
});

function shell(): HTMLElement {
  const range = h('select', { 'aria-label': 'time range', 'data-testid': 'range' }, RANGES.map((r) => h('option', { value: r.value }, r.label)), h('option', { value: 'custom' }, 'Custom…'));
  const custom = h('input', { type: 'number', min: 1, max: 3650, step: 1, 'aria-label': 'days', title: 'last N days (1-3650)', class: 'days' });
  const syncRange = () => {
    const preset = RANGES.find((r) => r.days === settings.days);
    range.value = preset ? preset.value : 'custom';
    custom.value = String(settings.days);
    custom.hidden = preset !== undefined;
  };
  range.addEventListener('change', () => {
    if (range.value === 'custom') {
      custom.hidden = false;
      custom.focus();
      return;
    }
    settings.days = Number(range.value);
    save();
    syncRange();
    void render();
  });
  custom.addEventListener('change', () => {
    const d = Number(custom.value);
    if (!Number.isInteger(d) || d < 1 || d > 3650) {
      custom.setCustomValidity('a whole number of days from 1 to 3650');
      custom.reportValidity();
      return;
    }
    custom.setCustomValidity('');
    settings.days = d;
    save();
    void render();
  });
  syncRange();

  const refresh = h('select', { 'aria-label': 'auto-refresh' }, [0, 30, 60, 300].map((s) => h('option', { value: s, selected: s === settings.refreshSeconds }, s === 0 ? 'no refresh' : `every ${s < 60 ? `${s} s` : `${s / 60} min`}`)));
  refresh.addEventListener('change', () => {
    settings.refreshSeconds = Number(refresh.value);
    save();
    schedule();
  });
  const theme = h('button', { type: 'button', class: 'secondary', title: 'theme: auto, light or dark' });
  const themeText = () => (theme.textContent = { auto: '◐ auto', light: '☀ light', dark: '☾ dark' }[settings.theme]);
  theme.addEventListener('click', () => {
    settings.theme = settings.theme === 'auto' ? 'light' : settings.theme === 'light' ? 'dark' : 'auto';
    save();
    applyTheme();
    themeText();
    void render();
  });
  themeText();
  const nav = h('nav', {}, NAV.map(([id, label]) => h('a', { href: `#/${id}`, 'data-nav': id }, label)));
  return h(
    'div',
    { class: 'shell' },
    h('header', {}, h('div', { class: 'brand' }, 'asa-backend', h('span', {}, 'LLM usage and cost')), nav, h('div', { class: 'controls' }, range, custom, refresh, theme, signOut, status)),
    main,
  );
}

function keyForm(message: string | null): HTMLElement {
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', placeholder: 'asa_…', 'aria-label': 'API key', required: true });
  const submit = h('button', { type: 'submit' }, 'Open the dashboard');
  const form = h(
    'form',
    { class: 'panel key-form' },
    h('h2', {}, 'API key'),
    h('p', {}, 'This service needs an API key. It is kept for this browser tab only (session storage) and sent only to this service.'),
    message ? h('p', { class: 'warn', role: 'alert', 'data-testid': 'key-error' }, message) : null,
    input,
    submit,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    submit.disabled = true;
    // The key is checked before it is kept or any data is asked for with it.
    whoami(key).then(
      () => {
        apiKey.set(key);
        enter(true);
      },
      (err: unknown) =>
        askForKey(
          err instanceof AuthRequiredError
            ? `That key was not accepted (${err.message}). Check it and enter it again.`
            : `The key could not be checked: ${err instanceof Error ? err.message : String(err)}. Try again.`,
        ),
    );
  });
  return form;
}

/** Shows the key form (with what went wrong, if anything); nothing else is asked of the API until a key is accepted. */
function askForKey(message: string | null): void {
  signedIn = false;
  generation++; // a render still in flight must not replace the form
  const form = keyForm(message);
  main.replaceChildren(form);
  status.textContent = '';
  document.body.dataset.state = 'key';
  form.querySelector('input')?.focus();
}

function enter(withKey: boolean): void {
  signedIn = true;
  signOut.hidden = !withKey;
  void render();
}

/** First of all, ask whether the API needs a key and whether the one this tab kept is still accepted. */
async function start(): Promise<void> {
  document.body.dataset.state = 'loading';
  status.textContent = 'loading…';
  try {
    const who = await whoami(apiKey.get());
    if (who.api_keys_required && who.key === null) askForKey(null);
    else enter(who.api_keys_required);
  } catch (err) {
    if (err instanceof AuthRequiredError) {
      apiKey.clear();
      askForKey(`The key kept in this tab is no longer accepted (${err.message}). Enter a key.`);
      return;
    }
    main.replaceChildren(h('div', { class: 'panel error', role: 'alert' }, err instanceof Error ? err.message : String(err)));
    status.textContent = '';
    document.body.dataset.state = 'error';
  }
}

async function render(): Promise<void> {
  if (!signedIn) return; // the key form is up: no data request until a key is accepted
  const mine = ++generation;
  const r = route();
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav a')) a.classList.toggle('active', a.dataset.nav === r.name);
  document.body.dataset.state = 'loading';
  status.textContent = 'loading…';
  try {
    const page = await r.page();
    if (mine !== generation) return; // a newer render started meanwhile
    charts.length = 0;
    const y = window.scrollY;
    main.replaceChildren(page);
    window.scrollTo(0, y);
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    // Set after the charts (drawn on the next frame) are in: what the benchmark waits for.
    requestAnimationFrame(() => requestAnimationFrame(() => mine === generation && (document.body.dataset.state = 'ready')));
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof AuthRequiredError) {
      // The key was revoked (or the keys file changed) since it was accepted.
      apiKey.clear();
      askForKey(`The key is no longer accepted (${err.message}). Enter a key.`);
      return;
    }
    clear(main);
    main.appendChild(h('div', { class: 'panel error', role: 'alert' }, err instanceof Error ? err.message : String(err)));
    status.textContent = '';
    document.body.dataset.state = 'error';
  }
}

let timer: number | undefined;
function schedule(): void {
  if (timer !== undefined) clearInterval(timer);
  timer = settings.refreshSeconds > 0 ? window.setInterval(() => document.visibilityState === 'visible' && void render(), settings.refreshSeconds * 1000) : undefined;
}

applyTheme();
root.appendChild(shell());
window.addEventListener('hashchange', () => void render());
schedule();
void start();
