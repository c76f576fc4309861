import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_UPSTREAM, GatewayUpstreamConfig, parseGatewayFile } from './gateway.config';

const DEFAULT: GatewayUpstreamConfig = { name: DEFAULT_UPSTREAM, baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'k', provider: 'openai', timeoutMs: 1000, maxRetries: 0 };
const parse = (json: unknown, vars: Record<string, string> = {}) => parseGatewayFile('/etc/asa/gateway.json', JSON.stringify(json), DEFAULT, (n) => vars[n]);

describe('gateway file', () => {
  it('reads the example file shipped in config/', () => {
    const file = resolve(__dirname, '../../config/gateway.example.json');
    const { upstreams, routes } = parseGatewayFile(file, readFileSync(file, 'utf8'), DEFAULT, (n) => (n === 'OPENROUTER_API_KEY' ? 'sk-or' : undefined));
    expect(upstreams.map((u) => [u.name, u.provider, u.apiKey])).toEqual([
      ['default', 'openai', 'k'],
      ['ollama', 'ollama', 'unused'],
      ['openrouter', 'openrouter', 'sk-or'],
    ]);
    expect(upstreams[2].timeoutMs).toBe(60_000);
    expect(routes).toEqual([
      { pattern: 'ollama/*', upstream: 'ollama' },
      { pattern: 'anthropic/claude-sonnet-4', upstream: 'openrouter' },
      { pattern: '*', upstream: 'default' },
    ]);
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['an unknown top-level field', { routes: [{ model: '*', upstream: 'default' }], route: [] }, /unknown field "route"/],
    ['no routes', { upstreams: {} }, /"routes" must be a non-empty list/],
    ['a route to an unknown upstream', { routes: [{ model: '*', upstream: 'nope' }] }, /routes\[0\]\.upstream must name an upstream/],
    ['a bad model pattern', { routes: [{ model: 'a*b', upstream: 'default' }] }, /routes\[0\]\.model must be a model name/],
    ['a redefined default', { upstreams: { default: { base_url: 'http://x/v1', provider: 'openai' } }, routes: [{ model: '*', upstream: 'default' }] }, /cannot be redefined/],
    ['a base URL that is not http(s)', { upstreams: { a: { base_url: 'ftp://x', provider: 'openai' } }, routes: [{ model: '*', upstream: 'a' }] }, /upstreams\.a\.base_url must be an http\(s\) URL/],
    ['a missing provider', { upstreams: { a: { base_url: 'http://x/v1' } }, routes: [{ model: '*', upstream: 'a' }] }, /upstreams\.a\.provider/],
    ['an unset key variable', { upstreams: { a: { base_url: 'http://x/v1', provider: 'p', api_key_env: 'NOT_SET' } }, routes: [{ model: '*', upstream: 'a' }] }, /the variable NOT_SET is not set/],
    ['a missing key file', { upstreams: { a: { base_url: 'http://x/v1', provider: 'p', api_key_file: 'missing.key' } }, routes: [{ model: '*', upstream: 'a' }] }, /api_key_file: \/etc\/asa\/missing\.key does not exist \(ENOENT\)/],
    ['both key sources', { upstreams: { a: { base_url: 'http://x/v1', provider: 'p', api_key_env: 'A', api_key_file: 'b' } }, routes: [{ model: '*', upstream: 'a' }] }, /not both/],
    ['a zero timeout', { upstreams: { a: { base_url: 'http://x/v1', provider: 'p', timeout_ms: 0 } }, routes: [{ model: '*', upstream: 'a' }] }, /timeout_ms must be a whole number/],
    ['an unknown upstream field', { upstreams: { a: { base_url: 'http://x/v1', provider: 'p', key: 'x' } }, routes: [{ model: '*', upstream: 'a' }] }, /unknown field "key"/],
  ])('refuses %s, naming the field', (_what, json, message) => {
    const text = typeof json === 'string' ? json : JSON.stringify(json);
    expect(() => parseGatewayFile('/etc/asa/gateway.json', text, DEFAULT, () => undefined)).toThrow(message);
    expect(() => parseGatewayFile('/etc/asa/gateway.json', text, DEFAULT, () => undefined)).toThrow(/^Gateway file \/etc\/asa\/gateway\.json: /);
  });

  it('takes a key from a variable', () => {
    const { upstreams } = parse({ upstreams: { a: { base_url: 'http://x/v1', provider: 'p', api_key_env: 'A_KEY', max_retries: 2 } }, routes: [{ model: 'x', upstream: 'a' }] }, { A_KEY: ' sk-a \n' });
    expect(upstreams[1]).toEqual({ name: 'a', baseUrl: 'http://x/v1', apiKey: 'sk-a', provider: 'p', timeoutMs: 1000, maxRetries: 2 });
  });
});
