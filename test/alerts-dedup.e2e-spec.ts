/**
 * An alert is raised once per dedup key across two service instances on one database (SQLite
 * file, PostgreSQL) and across a restart; a delivery left pending at shutdown is resumed by the
 * next start from its stored attempts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AlertService } from '../src/modules/quotas/alerts/alert.service';
import { quotaAlert, writeRelayNotifierPlugin } from './support/alerts';
import { createTestApp, TestApp } from './support/create-app';
import { eventually, HttpReceiver, startHttpReceiver } from './support/notifier-receivers';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

const KEYS = 20;

function dedupSuite(databaseUrl: () => string) {
  let dir: string;
  let relay: HttpReceiver;
  let env: Record<string, string>;
  let apps: TestApp[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-alert-dedup-'));
    relay = await startHttpReceiver();
    const plugin = writeRelayNotifierPlugin(dir, relay.url);
    env = {
      DATABASE_URL: databaseUrl(),
      ALERT_NOTIFIER_PLUGINS: plugin,
      ALERT_DELIVERY_MAX_ATTEMPTS: '3',
      // Long enough that the service is stopped while waiting for the second attempt.
      ALERT_DELIVERY_BACKOFF_MS: '60000',
      ALERT_DELIVERY_TIMEOUT_MS: '5000',
    };
  });

  // Closed newest first: createTestApp restores the environment it found, so the order matters.
  const closeAll = async () => {
    for (const a of apps.reverse()) await a.close();
    apps = [];
  };
  afterEach(closeAll);
  afterAll(async () => {
    await relay?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const app = await createTestApp({ env });
    apps.push(app);
    return app;
  };

  it('two instances raising the same keys at once create each alert exactly once, sweeping at once resolve it once; a restart does not repeat it', async () => {
    relay.respond = { status: 200, body: 'ok' };
    const a = await start();
    const b = await start();
    const inputs = Array.from({ length: KEYS }, (_, i) => quotaAlert({ ruleId: `rule-${i}` }));
    const results = await Promise.all(inputs.flatMap((input) => [a, b].map((app) => app.app.get(AlertService).raise(input))));
    for (let i = 0; i < KEYS; i++) {
      const [ra, rb] = [results[2 * i], results[2 * i + 1]];
      expect(ra.alertId).toBe(rb.alertId);
      expect(Number(ra.created) + Number(rb.created)).toBe(1);
    }
    const ds = a.app.get(DataSource);
    const [{ n }] = await ds.query(`SELECT COUNT(*) AS n FROM alerts WHERE rule_id LIKE 'rule-%'`);
    expect(Number(n)).toBe(KEYS);
    // One notification per alert, whichever instance won.
    await eventually('every alert delivered', () => (relay.requests.length >= KEYS ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    expect(relay.requests).toHaveLength(KEYS);
    expect(new Set(relay.requests.map((r) => JSON.parse(r.raw).id)).size).toBe(KEYS);

    // Both instances sweep past the window's end at once: each alert resolves (and notifies) once.
    await eventually('the first dispatches to finish', async () => {
      const [{ n: pending }] = await ds.query(`SELECT COUNT(*) AS n FROM alerts WHERE dispatch_state = 'pending'`);
      return Number(pending) === 0 ? true : undefined;
    });
    const end = new Date('2026-12-01T00:00:00.000Z');
    const swept = await Promise.all([a, b].map((app) => app.app.get(AlertService).sweep(end)));
    expect(swept[0].resolved + swept[1].resolved).toBe(KEYS);
    await eventually('every resolution delivered', () => (relay.requests.length >= 2 * KEYS ? true : undefined));
    await new Promise((r) => setTimeout(r, 200));
    const resolutions = relay.requests.map((r) => JSON.parse(r.raw)).filter((m) => m.state === 'resolved');
    expect(resolutions).toHaveLength(KEYS);
    expect(new Set(resolutions.map((m) => m.id)).size).toBe(KEYS);

    await closeAll();
    const c = await start();
    const again = await c.app.get(AlertService).raise(inputs[0]);
    expect(again).toEqual({ alertId: results[0].alertId, created: false });
    expect(relay.requests).toHaveLength(2 * KEYS);
  });

  it('a delivery pending at shutdown is resumed by the next start, continuing its attempt count', async () => {
    relay.requests.length = 0;
    relay.respond = { status: 503, body: 'try later' };
    const first = await start();
    const { alertId } = await first.app.get(AlertService).raise(quotaAlert({ ruleId: 'resumed' }));
    const ds = first.app.get(DataSource);
    await eventually('the first failed attempt', async () =>
      (await ds.query(`SELECT 1 FROM alert_deliveries WHERE alert_id = '${alertId}'`)).length === 1 ? true : undefined,
    );
    await closeAll(); // during the 60 s backoff: the lease is released, not the delivery

    relay.respond = { status: 200, body: 'ok' };
    const second = await start();
    const alert = await eventually('the resumed delivery', async () => {
      const res = await second.app.inject({ method: 'GET', url: '/api/v1/alerts?rule=resumed' });
      const a = (res.json() as { alerts: { delivery_pending: boolean; deliveries: { attempt: number; result: string; http_status: number | null }[] }[] }).alerts[0];
      return a && !a.delivery_pending ? a : undefined;
    });
    expect(alert.deliveries).toMatchObject([
      { attempt: 1, result: 'failed', http_status: 503 },
      { attempt: 2, result: 'ok', http_status: null },
    ]);
    expect(relay.requests.map((r) => JSON.parse(r.raw))).toEqual([
      { id: alertId, state: 'firing' },
      { id: alertId, state: 'firing' },
    ]);
  });
}

describe('alerts raised once across instances and restarts (SQLite)', () => {
  let dbDir: string;
  beforeAll(() => {
    dbDir = mkdtempSync(join(tmpdir(), 'asa-alert-sqlite-'));
  });
  afterAll(() => rmSync(dbDir, { recursive: true, force: true }));
  dedupSuite(() => `sqlite:${join(dbDir, 'shared.db')}`);
});

describePostgres('alerts raised once across instances and restarts', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(async () => {
    await db?.drop();
  });
  dedupSuite(() => db.url);
});
