/**
 * Benchmark: how long the dashboard takes to load, in headless Chromium, from navigation to the
 * data rendered (the page sets body[data-state=ready] once its API answers are drawn, charts
 * included), on the benchmarks' database of 1,000,000 usage records (quick: 20,000).
 *
 *   npx ts-node --transpile-only bench/dashboard.ts [--quick]
 *
 * Runs the built service (the same build as the tests: tsc + the dashboard bundle) as a real
 * process on a scratch SQLite file, keyless on 127.0.0.1. The records, tasks and rollups are the
 * benchmarks' deterministic data (bench/generate-usage.ts: 90 days, 50 models, 1,000 users,
 * 100,000 tasks), generated while the service is stopped.
 * Each page is loaded once to warm up, then `runs` times; the median and the slowest are reported.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { parseDatabaseUrl } from '../src/config/database.config';
import { buildTypeOrmOptions } from '../src/database/typeorm-options';
import { generateUsage } from './generate-usage';
import { buildService, freePort, startService, waitForHttp } from '../test/support/service-process';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const PAGES: [name: string, hash: string, days: number][] = [
  ['overview, last 7 days', '#/overview', 7],
  ['overview, last 30 days', '#/overview', 30],
  ['by model, last 30 days', '#/models', 30],
  ['by user, last 30 days', '#/users', 30],
  ['tasks', '#/tasks', 7],
];

export interface DashboardBenchResult {
  records: number;
  loadSeconds: number;
  pages: { page: string; medianMs: number; maxMs: number; runs: number; detail: string }[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(opts: { quick: boolean }): Promise<DashboardBenchResult> {
  const count = opts.quick ? 20_000 : 1_000_000;
  const runs = opts.quick ? 3 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'asa-bench-dashboard-'));
  const file = join(dir, 'bench.db');
  buildService();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { PORT: String(port), DATABASE_URL: `sqlite:${file}`, API_KEYS_FILE: join(dir, 'none.json'), USAGE_JOURNAL_DIR: join(dir, 'journal'), BILLING_EXPORT_DIR: join(dir, 'exports'), BILLING_DAILY_CRON: '', BILLING_MONTHLY_CRON: '', TASK_SANDBOX: 'none' };
  // API_KEYS_FILE names a missing file only by default; point it at an empty key list.
  writeFileSync(env.API_KEYS_FILE, '{ "keys": [] }\n');
  let svc = startService({ cwd: dir, env });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    await waitForHttp(`${base}/health`, 60_000, svc);
    // Migrations have run; fill the database while the service is idle, then restart it cold.
    await svc.stop();
    const loadStarted = Date.now();
    const ds = await new DataSource({ ...buildTypeOrmOptions(parseDatabaseUrl(env.DATABASE_URL)), logging: false }).initialize();
    try {
      await generateUsage(ds, { rows: count, ...(opts.quick ? { tasks: 2_000, users: 50 } : {}) });
    } finally {
      await ds.destroy();
    }
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    svc = startService({ cwd: dir, env });
    await waitForHttp(`${base}/health`, 60_000, svc);

    const pages: DashboardBenchResult['pages'] = [];
    for (const [name, hash, days] of PAGES) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await context.addInitScript(`localStorage.setItem('asa-dashboard-days', '${days}'); localStorage.setItem('asa-dashboard-refresh', '0');`);
      const page = await context.newPage();
      const times: number[] = [];
      for (let i = 0; i <= runs; i++) {
        // Away first: a goto to the URL the page is already on would only be a fragment navigation.
        await page.goto('about:blank');
        const t0 = performance.now();
        await page.goto(`${base}/dashboard${hash}`, { waitUntil: 'commit' });
        await page.waitForSelector('body[data-state="ready"]', { timeout: 120_000 });
        if (i > 0) times.push(performance.now() - t0); // the first load warms up the browser and the database cache
      }
      // Where the last load spent its time: the script, and the slowest API answers.
      const timing = (await page.evaluate(`(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const api = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/v1/')).sort((a, b) => b.duration - a.duration).slice(0, 3);
        return { domContentLoaded: Math.round(nav.domContentLoadedEventEnd), api: api.map((r) => new URL(r.name).pathname.replace('/api/v1/', '') + new URL(r.name).search + ' ' + Math.round(r.duration) + ' ms') };
      })()`)) as { domContentLoaded: number; api: string[] };
      await context.close();
      pages.push({ page: name, medianMs: Math.round(median(times)), maxMs: Math.round(Math.max(...times)), runs, detail: `script ready at ${timing.domContentLoaded} ms; slowest API: ${timing.api.join(', ')}` });
    }
    const result = { records: count, loadSeconds, pages };
    console.log(`dashboard load to data rendered, ${count.toLocaleString('en')} records over 90 days (SQLite, generated in ${loadSeconds.toFixed(1)} s):`);
    for (const p of pages) console.log(`  ${p.page.padEnd(24)} median ${String(p.medianMs).padStart(5)} ms, slowest ${String(p.maxMs).padStart(5)} ms (${p.runs} loads)\n    ${p.detail}`);
    return result;
  } finally {
    await browser.close();
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run({ quick: process.argv.includes('--quick') }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
