import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import { FakeOpenAi } from './fixtures/fake-openai';
import { sandboxReachableTempDir } from './support/scratch';
import { buildService, freePort, PROJECT_ROOT, ServiceProcess, startService, taskServiceEnv, waitForHttp } from './support/service-process';
import { ADMIN_KEY, ALICE_KEY, bearer, BuggyRepo, createBuggyRepo, writeApiKeys } from './support/tasks';

/** Debian's Chromium (`apt-get install chromium`, done by .ci/run). */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(PROJECT_ROOT, 'test-output', 'screenshots');
const fenced = (diff: string) => `Here is the fix.\n\n\`\`\`diff\n${diff}\`\`\`\n`;

/**
 * The dashboard in a real browser (headless Chromium) against the built service as a real process,
 * with API keys, over data from real task runs: the bug-fix agent calling the fake OpenAI-compatible
 * model through the openai SDK. One browser for the file; each page is checked against what the
 * REST API answers for the same key, and saved as a screenshot under test-output/screenshots.
 */
describe('dashboard in Chromium (built service, real tasks)', () => {
  let dir: string;
  let repo: BuggyRepo;
  let fake: FakeOpenAi;
  let svc: ServiceProcess;
  let base: string;
  let browser: Browser;
  const tasks: Record<'alice' | 'bob' | 'carol', string> = { alice: '', bob: '', carol: '' };
  const offsite: string[] = [];

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async function apiGet(path: string, key = ADMIN_KEY): Promise<any> {
    const res = await fetch(`${base}${path}`, { headers: bearer(key) });
    expect(res.status, path).toBe(200);
    return res.json();
  }
  async function apiPost(path: string, body: unknown): Promise<number> {
    const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(ADMIN_KEY) }, body: JSON.stringify(body) });
    return res.status;
  }
  async function runTask(user: string, model: string, replies: string[]): Promise<string> {
    for (const r of replies) fake.enqueue({ content: fenced(r), usage: { prompt_tokens: 1800 + 200 * replies.length, completion_tokens: 120 } });
    const res = await fetch(`${base}/api/v1/task/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(ADMIN_KEY) },
      body: JSON.stringify({ repo_url: repo.path, bug_description: 'add(2, 3) returns -1', test_command: repo.testCommand, user_id: user, model, max_attempts: 3 }),
    });
    expect(res.status).toBe(202);
    const { task_id } = (await res.json()) as { task_id: string };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const t = await apiGet(`/api/v1/task/${task_id}`);
      if (['succeeded', 'failed', 'cancelled'].includes(t.status)) break;
      if (Date.now() > deadline) throw new Error(`task did not finish: ${JSON.stringify(t)}\n${svc.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return task_id;
  }

  async function openAs(key: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('request', (req) => {
      if (!req.url().startsWith(base) && !req.url().startsWith('data:') && !req.url().startsWith('blob:')) offsite.push(req.url());
    });
    await page.goto(`${base}/dashboard`);
    // With keys configured the page asks for one first.
    await page.waitForSelector('body[data-state="key"]');
    await page.fill('input[name="key"]', key);
    await page.click('form.key-form button[type="submit"]');
    await page.waitForSelector('body[data-state="ready"]');
    return page;
  }
  async function go(page: Page, hash: string): Promise<void> {
    // Marked first, so the wait below sees this render finish, not the previous one.
    await page.evaluate(`document.body.dataset.state = 'loading'; location.hash = ${JSON.stringify(hash)}`);
    await page.waitForSelector('body[data-state="ready"]');
  }
  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const exact = (page: Page, testId: string) => page.getAttribute(`[data-testid="${testId}"]`, 'data-exact');
  const text = (page: Page, testId: string) => page.textContent(`[data-testid="${testId}"]`);
  const firstColumn = (page: Page, table: string) => page.$$eval(`table[data-table="${table}"] tbody tr td:first-child`, (tds) => tds.map((td) => td.textContent ?? ''));

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
    buildService();
    mkdirSync(SCREENSHOTS, { recursive: true });
    dir = sandboxReachableTempDir('asa-dashboard-e2e-');
    repo = createBuggyRepo(dir);
    fake = await FakeOpenAi.start({ defaultReply: { content: 'no idea' } });
    const port = await freePort();
    svc = startService({
      cwd: dir,
      env: {
        ...taskServiceEnv({ port, llmBaseUrl: fake.baseUrl, workspaceDir: join(dir, 'workspaces') }),
        DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`,
        API_KEYS_FILE: writeApiKeys(dir),
        BILLING_EXPORT_DIR: join(dir, 'exports'),
      },
    });
    base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/health`, 60_000, svc);
    // alice: fixed at once; bob: a wrong patch, then the right one (two calls); carol: another model.
    tasks.alice = await runTask('alice', 'gpt-4o-mini', [repo.goodDiff]);
    tasks.bob = await runTask('bob', 'gpt-4o-mini', [repo.wrongDiff, repo.goodDiff]);
    tasks.carol = await runTask('carol', 'gpt-4o', [repo.goodDiff]);
    expect(await apiPost('/api/v1/quotas', { id: 'alice-daily', scope: { user_id: 'alice' }, limit_usd: '0.01', window: 'day' })).toBe(201);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(await apiPost('/api/v1/billing/exports', { from: today, to: tomorrow })).toBe(201);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
    await fake?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page and its files itself, public, with a policy that keeps every request on this service', async () => {
    const res = await fetch(`${base}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/connect-src 'self'/);
    const html = await res.text();
    expect(html).toContain('/dashboard/app.js');
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${base}/dashboard/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await fetch(`${base}/dashboard/nothing.js`)).status).toBe(404);
  });

  it('asks for the key before any data request: a wrong key is refused with a message and asked for again; the accepted key is kept for the tab only', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const calls: { path: string; status: number; auth: boolean }[] = [];
    page.on('response', (res) => {
      if (res.url().startsWith(`${base}/api/`)) calls.push({ path: new URL(res.url()).pathname, status: res.status(), auth: res.request().headers().authorization !== undefined });
    });
    const WHOAMI = '/api/v1/auth/whoami';
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('body[data-state="key"]');
    // The first paint: the key form, no error, and only the public question whether a key is needed.
    expect(calls).toEqual([{ path: WHOAMI, status: 200, auth: false }]);
    expect(await page.$('[data-testid="key-error"], .panel.error')).toBeNull();
    await shot(page, 'key-form');

    await page.fill('input[name="key"]', 'asa_not_a_valid_key');
    await page.click('form.key-form button[type="submit"]');
    await page.waitForSelector('[data-testid="key-error"]');
    expect(await page.textContent('[data-testid="key-error"]')).toBe('That key was not accepted (Unknown API key). Check it and enter it again.');
    expect(await page.getAttribute('body', 'data-state')).toBe('key');
    expect(await page.inputValue('input[name="key"]')).toBe('');
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await shot(page, 'key-form-wrong-key');
    // Moving to another page while the form is up asks nothing of the API either (checked below:
    // every data request carries the accepted key).
    await page.evaluate("location.hash = '#/tasks'");
    await page.waitForSelector('form.key-form');

    await page.fill('input[name="key"]', ADMIN_KEY);
    await page.click('form.key-form button[type="submit"]');
    await page.waitForSelector('body[data-state="ready"]');
    expect(await page.$$('table[data-table="tasks"] tbody tr')).toHaveLength(3);
    const firstData = calls.findIndex((c) => c.path !== WHOAMI);
    expect(calls.slice(0, firstData)).toEqual([
      { path: WHOAMI, status: 200, auth: false },
      { path: WHOAMI, status: 401, auth: true },
      { path: WHOAMI, status: 200, auth: true },
    ]);
    expect(calls.slice(firstData).filter((c) => !c.auth || c.status !== 200)).toEqual([]);
    expect(await page.evaluate('[Object.keys(sessionStorage), Object.keys(localStorage).some((k) => /key/i.test(k))]')).toEqual([['asa-dashboard-api-key'], false]);

    // The tab keeps it across a reload; another tab asks again.
    await page.evaluate("document.body.dataset.state = 'loading'");
    await page.reload();
    await page.waitForSelector('body[data-state="ready"]');
    const other = await context.newPage();
    await other.goto(`${base}/dashboard`);
    await other.waitForSelector('body[data-state="key"]');
    await context.close();
  });

  it('admin: the overview shows the API totals to the nano-dollar; users, models, quotas and billing pages render', async () => {
    const page = await openAs(ADMIN_KEY);
    for (const days of [1, 7, 30]) {
      expect(await exact(page, `spend-${days}`)).toBe((await apiGet(`/api/v1/usage/overall?days=${days}`)).total_cost_usd_exact);
    }
    const week = await apiGet('/api/v1/usage/overall?days=7');
    expect(week.total_requests).toBe(4);
    expect(await exact(page, 'total-cost')).toBe(week.total_cost_usd_exact);
    expect(await text(page, 'total-cost')).toBe(`$${week.total_cost_usd_exact.replace(/0+$/, '').replace(/\.(\d)$/, '.$10')}`);
    expect(await text(page, 'total-requests')).toBe(String(week.total_requests));
    expect(await text(page, 'total-tokens')).toBe(week.total_tokens.toLocaleString('en-US'));
    const stats = await apiGet('/api/v1/usage/metrics/tasks?days=7');
    expect(await text(page, 'task-success-rate')).toBe(`${stats.success_rate_percent} %`);
    expect(await page.$$('.chart canvas')).not.toHaveLength(0);
    await shot(page, 'overview');

    await go(page, '#/users');
    expect((await firstColumn(page, 'by-user')).sort()).toEqual(Object.keys(week.by_user).sort());
    await shot(page, 'users');
    await go(page, '#/models');
    expect((await firstColumn(page, 'by-model')).sort()).toEqual(['gpt-4o', 'gpt-4o-mini']);
    // Sorted by cost, highest first, and the other way round after a click on the header.
    const byCost = Object.entries(week.by_model as Record<string, { cost_usd_exact: string }>).sort(([, a], [, b]) => Number(b.cost_usd_exact) - Number(a.cost_usd_exact)).map(([m]) => m);
    expect(await firstColumn(page, 'by-model')).toEqual(byCost);
    await page.click('table[data-table="by-model"] th:has-text("Cost")');
    expect(await firstColumn(page, 'by-model')).toEqual([...byCost].reverse());
    await shot(page, 'models');
    await go(page, '#/quotas');
    expect(await page.textContent('table[data-table="quotas"]')).toContain('alice-daily');
    await shot(page, 'quotas');
    await go(page, '#/billing');
    const exportsList = (await apiGet('/api/v1/billing/exports')).exports;
    expect(await page.textContent('table[data-table="billing"]')).toContain(exportsList[0].file_name);
    await shot(page, 'billing');
    await page.context().close();
  });

  it("admin: the task list, and a task's page with its calls in order, its patch and its test output", async () => {
    const page = await openAs(ADMIN_KEY);
    await go(page, '#/tasks');
    const listed = await page.$$eval('table[data-table="tasks"] tbody tr a', (as) => as.map((a) => a.getAttribute('href')));
    expect(listed.sort()).toEqual(Object.values(tasks).map((id) => `#/task/${id}`).sort());
    await shot(page, 'tasks');

    await go(page, `#/task/${tasks.bob}`);
    const task = await apiGet(`/api/v1/task/${tasks.bob}`);
    const records = (await apiGet(`/api/v1/usage/records?task_id=${tasks.bob}`)).records.reverse();
    expect(task.attempts).toBe(2);
    expect(records).toHaveLength(2);
    const rows = await page.$$eval('table[data-table="task-calls"] tbody tr', (trs) =>
      trs.map((tr) => ({ n: tr.querySelector('td')?.textContent, model: tr.querySelectorAll('td')[2]?.textContent, cost: tr.querySelector('.money')?.getAttribute('data-exact') })),
    );
    expect(rows).toEqual(records.map((r: { requested_model: string; cost_usd_exact: string }, i: number) => ({ n: String(i + 1), model: r.requested_model, cost: r.cost_usd_exact })));
    expect(await exact(page, 'task-cost')).toBe(task.cost_usd_exact);
    expect(await exact(page, 'calls-cost')).toBe(task.cost_usd_exact);
    expect(await text(page, 'task-patch')).toBe(task.patch);
    expect(await text(page, 'task-test-output')).toContain('ok 1 - add works');
    await shot(page, 'task');
    await page.context().close();
  });

  it('a user key on a phone: only its own user, totals equal to what the API gives that key, dark theme', async () => {
    const page = await openAs(ALICE_KEY, { width: 390, height: 844 });
    const mine = await apiGet('/api/v1/usage/overall?days=7', ALICE_KEY);
    expect(Object.keys(mine.by_user)).toEqual(['alice']);
    expect(await exact(page, 'total-cost')).toBe(mine.total_cost_usd_exact);
    expect(await text(page, 'total-requests')).toBe(String(mine.total_requests));
    await page.click('button:has-text("auto")');
    await page.click('button:has-text("light")');
    await page.waitForSelector('body[data-state="ready"]');
    expect(await page.getAttribute('html', 'data-theme')).toBe('dark');
    await shot(page, 'overview-phone-dark');
    await go(page, '#/users');
    expect(await firstColumn(page, 'by-user')).toEqual(['alice']);
    await go(page, '#/tasks');
    const listed = await page.$$eval('table[data-table="tasks"] tbody tr a', (as) => as.map((a) => a.getAttribute('href')));
    expect(listed).toEqual([`#/task/${tasks.alice}`]);
    // Another user's task is not found, as in the API.
    await page.evaluate(`location.hash = '#/task/${tasks.bob}'`);
    await page.waitForSelector('body[data-state="error"]');
    expect(await page.textContent('[role="alert"]')).toBe(`No task with id "${tasks.bob}"`);
    await shot(page, 'user-key-other-task');
    // The key lives in this tab only.
    expect(await page.evaluate('[sessionStorage.length, Object.keys(localStorage).some((k) => /key/i.test(k))]')).toEqual([1, false]);
    await page.context().close();
  });

  it('fetched nothing from outside the service', () => {
    expect(offsite).toEqual([]);
  });
});
