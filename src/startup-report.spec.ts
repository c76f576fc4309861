import type { NetworkInterfaceInfo } from 'node:os';
import { displayEndpoint } from './modules/llm/llm-client.factory';
import type { PluginInfo } from './modules/plugins/plugin-registry.service';
import { describeDatabase, describeListenAddress, describePlugins } from './startup-report';

describe('start-up report', () => {
  it('names a SQLite file, or PostgreSQL host, port and database without user or password', () => {
    expect(describeDatabase({ type: 'sqlite', path: '/srv/asa/data/asa.db' })).toBe('SQLite file /srv/asa/data/asa.db');
    expect(describeDatabase({ type: 'postgres', url: 'postgres://asa:s3cret@db.internal:6432/billing?sslmode=require' })).toBe('PostgreSQL db.internal:6432/billing');
    expect(describeDatabase({ type: 'postgres', url: 'postgresql://db.internal/asa' })).toBe('PostgreSQL db.internal:5432/asa');
    expect(describeDatabase({ type: 'postgres', url: 'postgres://u:p@h' })).toBe("PostgreSQL h:5432/(the user's default database)");
    expect(describeDatabase({ type: 'postgres', url: 'not a url with password p' })).toBe('PostgreSQL (DATABASE_URL not shown)');
  });

  it('shows an LLM endpoint without credentials, query or fragment', () => {
    expect(displayEndpoint('https://api.openai.com/v1')).toBe('https://api.openai.com/v1');
    expect(displayEndpoint('http://user:pass@gw.local:8080/openai/v1/?api-key=k#x')).toBe('http://gw.local:8080/openai/v1');
  });

  const ifaces = (...addresses: [string, 'IPv4' | 'IPv6', boolean][]): NodeJS.Dict<NetworkInterfaceInfo[]> => ({
    eth0: addresses.map(([address, family, internal]) => ({ address, family, internal, netmask: '', mac: '', cidr: null }) as NetworkInterfaceInfo),
  });

  it('shows 0.0.0.0 as every interface, with the URLs that reach it, never as localhost', () => {
    const text = describeListenAddress({ host: '0.0.0.0', port: 8000 }, ifaces(['127.0.0.1', 'IPv4', true], ['10.1.2.3', 'IPv4', false], ['fd00::5', 'IPv6', false]));
    expect(text).toBe('http://0.0.0.0:8000, every network interface: http://127.0.0.1:8000 from this machine, http://10.1.2.3:8000 from others (docs at http://127.0.0.1:8000/docs)');
    expect(describeListenAddress({ host: '::', port: 8000 }, ifaces(['fd00::5', 'IPv6', false], ['fe80::1', 'IPv6', false]))).toContain('http://[fd00::5]:8000 from others');
    expect(describeListenAddress({ host: '0.0.0.0', port: 8000 }, {})).toBe('http://0.0.0.0:8000, every network interface: http://127.0.0.1:8000 from this machine (docs at http://127.0.0.1:8000/docs)');
    expect(describeListenAddress({ host: '127.0.0.1', port: 9000 })).toBe('http://127.0.0.1:9000 (docs at http://127.0.0.1:9000/docs)');
  });

  it('lists the plugins in use by kind, loaded ones with their module, and the optional ones skipped', () => {
    const plugin = (kind: PluginInfo['kind'], name: string | null, state: PluginInfo['state'], module: string | null = null) =>
      ({ kind, name, state, module, source: module ? 'plugin' : 'built-in', apiVersion: null, detail: null, activity: {} }) as unknown as PluginInfo;
    const text = describePlugins([
      plugin('sink', 'database', 'active'),
      plugin('sink', 'jsonl', 'failing', './examples/jsonl-usage-sink.js'),
      plugin('notifier', 'slack', 'disabled'),
      plugin('destination', 'local', 'active'),
      plugin('agent', 'bug-fix', 'active'),
      plugin('sink', null, 'skipped', 'missing-sink-package'),
    ]);
    expect(text).toBe(
      'usage sinks: database, jsonl (./examples/jsonl-usage-sink.js); alert notifiers: (none); export destinations: local; task agents: bug-fix; ' +
        'skipped (optional, could not be loaded): sink missing-sink-package',
    );
  });
});
