import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AlertService } from '../src/modules/quotas/alerts/alert.service';
import { createTestApp, TestApp } from './support/create-app';

describe('alert notifier plugins and notifier settings', () => {
  let dir: string;
  let t: TestApp | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-notifier-plugins-'));
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the example JSON Lines notifier; with no other settings it is the only notifier', async () => {
    const out = join(dir, 'alerts.jsonl');
    t = await createTestApp({ env: { ALERT_NOTIFIER_PLUGINS: resolve(__dirname, '../examples/jsonl-alert-notifier.js'), JSONL_ALERTS_FILE: out } });
    expect(t.app.get(AlertService).notifierNames()).toEqual(['jsonl-file']);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/alerts/test' });
    expect(res.json().results).toMatchObject([{ notifier: 'jsonl-file', ok: true, error: null }]);
    const line = JSON.parse(readFileSync(out, 'utf8').trim());
    expect(line).toMatchObject({ id: res.json().alert_id, kind: 'test', state: 'firing' });
  });

  it('answers an empty result list when no notifier is configured; both endpoints are in the OpenAPI document', async () => {
    t = await createTestApp();
    const doc = (await t.app.inject({ method: 'GET', url: '/docs-json' })).json();
    expect(doc.paths['/api/v1/alerts'].get.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/AlertListDto');
    expect(doc.paths['/api/v1/alerts/test'].post.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/TestAlertResponseDto');
    expect(Object.keys(doc.components.schemas.AlertDeliveryDto.properties)).toEqual(
      expect.arrayContaining(['notifier', 'state', 'attempt', 'result', 'error', 'http_status', 'duration_ms']),
    );
    expect(t.app.get(AlertService).notifierNames()).toEqual([]);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/alerts/test' });
    expect(res.statusCode).toBe(200);
    expect(res.json().results).toEqual([]);
  });

  it('refuses to start when a plugin cannot be loaded, naming it', async () => {
    await expect(createTestApp({ env: { ALERT_NOTIFIER_PLUGINS: './no/such/notifier.js' } })).rejects.toThrow(
      /Alert notifier plugin "\.\/no\/such\/notifier\.js" could not be loaded/,
    );
    const bad = join(dir, 'not-a-notifier.js');
    writeFileSync(bad, 'exports.createAlertNotifier = () => ({ name: "x" });\n');
    await expect(createTestApp({ env: { ALERT_NOTIFIER_PLUGINS: bad } })).rejects.toThrow(/did not return an object with name and send\(\)/);
  });

  it('refuses two notifiers with one name', async () => {
    const dup = join(dir, 'slack-again.js');
    writeFileSync(dup, 'exports.createAlertNotifier = () => ({ name: "slack", async send() {} });\n');
    await expect(
      createTestApp({ env: { SLACK_WEBHOOK_URL: 'http://127.0.0.1:9/hook', ALERT_NOTIFIER_PLUGINS: dup } }),
    ).rejects.toThrow(/Two alert notifiers are named "slack"/);
  });

  it('refuses a missing secret file naming the variable, without its content', async () => {
    await expect(createTestApp({ env: { SLACK_WEBHOOK_URL_FILE: join(dir, 'missing') } })).rejects.toThrow(
      /SLACK_WEBHOOK_URL_FILE=".*missing": does not exist \(ENOENT\)/,
    );
  });
});
