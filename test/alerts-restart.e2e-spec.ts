/**
 * Alert deliveries across real process stops (`node dist/main.js`): a dispatch a crashed process
 * left pending (its lease expired) is taken over at the next start; one interrupted by SIGTERM
 * while waiting to retry is left pending with its lease released, and the next start finishes it,
 * continuing the attempt count.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, HttpReceiver, startHttpReceiver } from './support/notifier-receivers';
import { sqlite } from './support/pipeline';
import { buildService, freePort, startService, waitForHttp } from './support/service-process';
import { writeRelayNotifierPlugin } from './support/alerts';

interface DeliveryRow {
  attempt: number;
  result: string;
  http_status: number | null;
}

describe('alert deliveries across process restarts (real process)', () => {
  let dir: string;
  let relay: HttpReceiver;
  let env: Record<string, string>;

  beforeAll(async () => {
    buildService();
    dir = mkdtempSync(join(tmpdir(), 'asa-alert-restart-'));
    relay = await startHttpReceiver({ status: 500, body: 'down' });
    const plugin = writeRelayNotifierPlugin(dir, relay.url);
    env = {
      DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`,
      ALERT_NOTIFIER_PLUGINS: plugin,
      ALERT_DELIVERY_MAX_ATTEMPTS: '3',
      ALERT_DELIVERY_BACKOFF_MS: '600000', // the stop always comes while waiting to retry
      ALERT_DELIVERY_TIMEOUT_MS: '5000',
    };
  }, 300_000);
  afterAll(async () => {
    await relay?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const run = async () => {
    const port = await freePort();
    const svc = startService({ cwd: dir, env: { ...env, PORT: String(port) } });
    await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000, svc);
    return svc;
  };

  it('resumes a crashed process\'s dispatch, and one stopped by SIGTERM, from the stored attempts', async () => {
    // First start creates the schema; then a row as a process that crashed mid-dispatch leaves it.
    await (await run()).stop();
    const id = randomUUID();
    const db = sqlite(join(dir, 'asa.db'));
    const payload = JSON.stringify({
      scope: { user_id: 'alice' }, percent: 100, spendUsd: '50.000000000', limitUsd: '50.000000000', spendTokens: null, limitTokens: null,
      window: { kind: 'month', start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' }, action: 'block',
    });
    await db.run(
      `INSERT INTO alerts (id, dedup_key, kind, rule_id, scope, threshold_percent, window_start_ms, window_end_ms, payload, state, notify,
         fired_at_ms, resolved_at_ms, dispatch_state, dispatch_token, dispatch_lease_until_ms)
       VALUES ('${id}', 'crashed|alice|100', 'quota_threshold', 'alice-monthly', '{"user_id":"alice"}', 100, ${Date.parse('2026-11-01')},
         ${Date.parse('2026-12-01')}, '${payload}', 'firing', '["relay"]', ${Date.now() - 120_000}, NULL, 'pending', 'dead-process', ${Date.now() - 1})`,
    );
    const deliveries = () => db.all<DeliveryRow>(`SELECT attempt, result, http_status FROM alert_deliveries WHERE alert_id = '${id}' ORDER BY attempt`);

    // The next start takes the expired lease over; the receiver is down, so it waits to retry.
    const a = await run();
    await eventually('the first attempt', async () => ((await deliveries()).length === 1 ? true : undefined));
    expect(await deliveries()).toEqual([{ attempt: 1, result: 'failed', http_status: 500 }]);
    const exit = await a.stop('SIGTERM');
    expect(exit.signal ?? exit.code).toBeTruthy();
    expect(a.output()).toContain('1 alert dispatch(es) unfinished at shutdown; they resume at the next start');
    const [left] = await db.all<{ dispatch_state: string; dispatch_lease_until_ms: number }>(
      `SELECT dispatch_state, dispatch_lease_until_ms FROM alerts WHERE id = '${id}'`,
    );
    expect(left).toEqual({ dispatch_state: 'pending', dispatch_lease_until_ms: 0 });

    // The receiver is back: the next start delivers with attempt 2, and the dispatch is done.
    relay.respond = { status: 200, body: 'ok' };
    const b = await run();
    try {
      await eventually('the resumed delivery', async () => ((await deliveries()).length === 2 ? true : undefined));
      expect(await deliveries()).toEqual([
        { attempt: 1, result: 'failed', http_status: 500 },
        { attempt: 2, result: 'ok', http_status: null },
      ]);
      await eventually('the dispatch to be done', async () =>
        (await db.all<{ dispatch_state: string }>(`SELECT dispatch_state FROM alerts WHERE id = '${id}'`))[0].dispatch_state === 'done' ? true : undefined,
      );
      expect(relay.requests.map((r) => JSON.parse(r.raw))).toEqual([
        { id, state: 'firing' },
        { id, state: 'firing' },
      ]);
    } finally {
      await b.stop();
      await db.close();
    }
  });
});
