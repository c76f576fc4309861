import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginLoadError } from '../../common/plugin-loader';
import type { PluginsConfig } from '../../config/plugins.config';
import { ALERT_NOTIFIER_KIND, USAGE_SINK_KIND } from './plugin-kinds';
import { PluginRegistry } from './plugin-registry.service';

describe('PluginRegistry', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-registry-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const registry = (settings: PluginsConfig['settings'] = new Map()) =>
    new PluginRegistry({ file: join(dir, 'plugins.json'), settings, loadTimeoutMs: 2_000 });
  const plugin = (file: string, source: string) => {
    writeFileSync(join(dir, file), source);
    return join(dir, file);
  };

  it('shows a plugin failing from a failed outcome until the next success, keeping the last error', () => {
    const r = registry();
    const h = r.registerBuiltIn(ALERT_NOTIFIER_KIND, 'slack');
    expect(r.list()[0]).toMatchObject({ kind: 'notifier', name: 'slack', source: 'builtin', apiVersion: '1.1.0', state: 'active' });
    h.failed('Slack answered HTTP 500');
    expect(r.list()[0]).toMatchObject({ state: 'failing', activity: { written: 0, errors: 1, lastError: { message: 'Slack answered HTTP 500' } } });
    h.succeeded();
    expect(r.list()[0]).toMatchObject({ state: 'active', activity: { written: 1, errors: 1, lastError: { message: 'Slack answered HTTP 500' } } });
  });

  it('reads a tracked activity (a sink queue) live', () => {
    const r = registry();
    const stats = { queued: 3, written: 7 };
    r.registerBuiltIn(USAGE_SINK_KIND, 'database').track(() => ({ queueDepth: stats.queued, written: stats.written, errors: 0, lastError: null, failing: false }));
    stats.queued = 0;
    stats.written = 10;
    expect(r.list()[0].activity).toMatchObject({ queueDepth: 0, written: 10 });
  });

  it('gives no handle for a disabled or skipped plugin, and lets a plugin take a disabled built-in\'s name', async () => {
    const r = registry(new Map([['./absent.js', { optional: true, options: {} }]]));
    r.registerBuiltIn(ALERT_NOTIFIER_KIND, 'slack', { disabled: 'not configured' });
    expect(r.handle('notifier', 'slack')).toBeUndefined();
    const mine = plugin('my-slack.js', 'exports.createAlertNotifier = () => ({ name: "slack", async send() {} });');
    expect((await r.load(ALERT_NOTIFIER_KIND, [mine, './absent.js'])).map((n) => n.name)).toEqual(['slack']);
    expect(r.handle('notifier', 'slack')).toBeDefined();
    expect(r.list().map((p) => [p.name, p.source, p.state])).toEqual([
      ['slack', 'builtin', 'disabled'],
      ['slack', 'path', 'active'],
      [null, 'path', 'skipped'],
    ]);
  });

  it('stops on a plugin that is not optional, and on a second plugin with a name in use', async () => {
    const r = registry();
    await expect(r.load(USAGE_SINK_KIND, ['./absent.js'])).rejects.toThrow(PluginLoadError);
    r.registerBuiltIn(USAGE_SINK_KIND, 'database');
    const dup = plugin('dup.js', 'exports.createUsageSink = () => ({ name: "database", async write() {} });');
    await expect(r.load(USAGE_SINK_KIND, [dup])).rejects.toThrow('Two usage sinks are named "database"; usage sink names must be unique');
  });
});
