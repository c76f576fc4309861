import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateApiKey, hashApiKey } from '../src/modules/auth/api-key-file';
import { ApiKeyService } from '../src/modules/auth/api-key.service';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { bearer, writeApiKeysFile } from './support/api-keys';
import { createTestApp, TestApp } from './support/create-app';
import { usageRecord } from './support/usage-records';

const run = promisify(execFile);

describe('access control with API keys', () => {
  let t: TestApp;
  let dir: string;
  const admin = generateApiKey();
  const alice = generateApiKey();
  const bob = generateApiKey();


  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-keys-'));
    const file = writeApiKeysFile(dir, [
      { name: 'ci', key: admin },
      { name: 'alice', key: alice, userId: 'alice' },
      { name: 'bob', key: bob, userId: 'bob' },
    ]);
    t = await createTestApp({ env: { API_KEYS_FILE: file } });
    const recorder = t.app.get(UsageRecorder);
    await recorder.record(usageRecord({ taskId: 'task-alice', userId: 'alice', costNanos: 1_000 }));
    await recorder.record(usageRecord({ taskId: 'task-alice', userId: 'alice', costNanos: 2_000, requestedModel: 'gpt-4o' }));
    await recorder.record(usageRecord({ taskId: 'task-bob', userId: 'bob', costNanos: 40_000 }));
    await recorder.flush();
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers });

  it('knows it has keys (main.ts then binds 0.0.0.0 instead of loopback)', () => {
    expect(t.app.get(ApiKeyService).hasKeys()).toBe(true);
  });

  it('refuses a request without a key with 401 and WWW-Authenticate: Bearer', async () => {
    const res = await get('/api/v1/usage/overall');
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.json().message).toMatch(/Authorization: Bearer/);
  });

  it.each([
    ['an unknown key', `Bearer ${generateApiKey()}`],
    ['a key with one character changed', `Bearer ${admin.slice(0, -1)}${admin.endsWith('A') ? 'B' : 'A'}`],
    ['another scheme', `Basic ${Buffer.from(`x:${admin}`).toString('base64')}`],
    ['the bare key', admin],
  ])('refuses %s with 401', async (_what, header) => {
    const res = await get('/api/v1/usage/overall', { authorization: header });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('lets an admin key read everything', async () => {
    expect((await get('/api/v1/usage/overall', bearer(admin))).json().total_requests).toBe(3);
    expect((await get('/api/v1/usage/user/bob', bearer(admin))).statusCode).toBe(200);
    expect((await get('/api/v1/usage/task/task-alice', bearer(admin))).statusCode).toBe(200);
  });

  it("lets a user key read its own user and tasks; another user is a 403, another user's task a 404", async () => {
    const own = await get('/api/v1/usage/user/alice', bearer(alice));
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject({ total_requests: 2, total_cost_usd_exact: '0.000003000' });
    expect((await get('/api/v1/usage/task/task-alice', bearer(alice))).json()).toMatchObject({ total_requests: 2 });

    const other = await get('/api/v1/usage/user/bob', bearer(alice));
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'USAGE_ACCESS_DENIED' });
    expect((await get('/api/v1/usage/task/task-bob', bearer(alice))).statusCode).toBe(404);
    expect((await get('/api/v1/usage/task/task-alice', bearer(bob))).statusCode).toBe(404);
  });

  it('filters overall and timeseries to the user of a user key', async () => {
    const overall = (await get('/api/v1/usage/overall', bearer(alice))).json();
    expect(overall).toMatchObject({ total_requests: 2, total_cost_usd_exact: '0.000003000' });
    expect(Object.keys(overall.by_user)).toEqual(['alice']);
    const series = (await get('/api/v1/usage/timeseries?group_by=user', bearer(bob))).json();
    expect(series.total_requests).toBe(1);
    expect(series.buckets.flatMap((b: { groups: object }) => Object.keys(b.groups))).toEqual(['bob']);
  });

  it('answers whoami without a key (that one is needed), names the key it is sent, and refuses an unknown one with 401', async () => {
    const anonymous = await get('/api/v1/auth/whoami');
    expect(anonymous.statusCode).toBe(200);
    expect(anonymous.json()).toEqual({ api_keys_required: true, key: null });
    expect((await get('/api/v1/auth/whoami', bearer(alice))).json()).toEqual({ api_keys_required: true, key: { name: 'alice', scope: 'user', user_id: 'alice' } });
    expect((await get('/api/v1/auth/whoami', bearer(admin))).json()).toEqual({ api_keys_required: true, key: { name: 'ci', scope: 'admin', user_id: null } });
    const unknown = await get('/api/v1/auth/whoami', bearer(generateApiKey()));
    expect(unknown.statusCode).toBe(401);
    expect(unknown.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(unknown.json().message).toBe('Unknown API key');
    expect((await get('/api/v1/auth/whoami', { authorization: admin })).statusCode).toBe(401);
  });

  it('keeps /health public', async () => {
    expect((await get('/health')).statusCode).toBe(200);
  });

  it('keeps /metrics public unless METRICS_REQUIRE_AUTH=true', async () => {
    expect((await get('/metrics')).statusCode).toBe(200);
  });

  it('protects the OpenAPI UI and document when keys are configured', async () => {
    for (const url of ['/docs', '/docs-json']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await get(url, bearer(alice))).statusCode, url).toBe(200);
    }
  });

  it('validates parameters only after authentication (no information to anonymous callers)', async () => {
    expect((await get('/api/v1/usage/overall?days=-1')).statusCode).toBe(401);
  });
});

describe('access control: /metrics with METRICS_REQUIRE_AUTH=true', () => {
  let t: TestApp;
  let dir: string;
  const admin = generateApiKey();
  const user = generateApiKey();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-keys-'));
    const file = writeApiKeysFile(dir, [
      { name: 'ops', key: admin },
      { name: 'u', key: user, userId: 'u1' },
    ]);
    t = await createTestApp({ env: { API_KEYS_FILE: file, METRICS_REQUIRE_AUTH: 'true' } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('needs an admin key', async () => {
    const anon = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Bearer/);
    const asUser = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${user}` } });
    expect(asUser.statusCode).toBe(403);
    const asAdmin = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${admin}` } });
    expect(asAdmin.statusCode).toBe(200);
    expect(asAdmin.body).toContain('# HELP');
    expect((await t.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});

describe('access control without keys (local mode)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t?.close());

  it('treats every request as admin, so the seed curl commands work on localhost', async () => {
    expect(t.app.get(ApiKeyService).hasKeys()).toBe(false);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=7' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/user-123?days=30' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/docs-json' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/whoami' })).json()).toEqual({ api_keys_required: false, key: { name: 'local', scope: 'admin', user_id: null } });
  });
});

describe('API keys file validation at boot', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['not JSON', '{ nope', /not valid JSON/],
    ['no keys array', '{"entries": []}', /expected an object \{"keys": \[\.\.\.\]\}/],
    ['user scope without user_id', JSON.stringify({ keys: [{ name: 'bad-user', scope: 'user', sha256: 'a'.repeat(64) }] }), /entry 0 \("bad-user"\): user_id is required/],
    ['a plaintext key instead of a hash', JSON.stringify({ keys: [{ name: 'ok', scope: 'admin', sha256: 'b'.repeat(64) }, { name: 'plain', scope: 'admin', sha256: 'asa_secret' }] }), /entry 1 \("plain"\): sha256 must be/],
    ['an unknown scope', JSON.stringify({ keys: [{ name: 'x', scope: 'root', sha256: 'c'.repeat(64) }] }), /entry 0 \("x"\): scope must be/],
    ['a duplicate name', JSON.stringify({ keys: [{ name: 'x', scope: 'admin', sha256: 'c'.repeat(64) }, { name: 'x', scope: 'admin', sha256: 'd'.repeat(64) }] }), /entry 1 \("x"\): name "x" is used twice/],
    ['a misspelled field', JSON.stringify({ keys: [{ name: 'x', scope: 'user', userid: 'u', user_id: 'u', sha256: 'c'.repeat(64) }] }), /unknown field\(s\) userid/],
  ])('refuses to start with %s, naming the file and the entry', async (_what, content, problem) => {
    const file = join(dir, `keys-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, content);
    const err = await createTestApp({ env: { API_KEYS_FILE: file } }).then(
      (app) => app.close().then(() => null),
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(file);
    expect(err?.message).toMatch(problem);
  });

  it('refuses to start when API_KEYS_FILE names a file that does not exist (a typo must not open the API)', async () => {
    const file = join(dir, 'typo-keys.json');
    await expect(createTestApp({ env: { API_KEYS_FILE: file } })).rejects.toThrow(`${file}: does not exist`);
  });
});

describe('npm run apikey', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const apikey = (...args: string[]) =>
    run('npx', ['ts-node', '--transpile-only', 'scripts/apikey.ts', ...args], { cwd: join(__dirname, '..') });

  it('prints a new key once, stores only its hash (file mode 600), and the service accepts it', async () => {
    const file = join(dir, 'api-keys.json');
    const created = await apikey('--name', 'alice', '--scope', 'user', '--user', 'user-123', '--file', file);
    const key = created.stdout.trim();
    expect(key).toMatch(/^asa_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('only time the key is shown');
    const adminKey = (await apikey('--name', 'ci', '--scope', 'admin', '--file', file)).stdout.trim();

    const stored = readFileSync(file, 'utf8');
    expect(stored).not.toContain(key);
    expect(JSON.parse(stored).keys).toEqual([
      expect.objectContaining({ name: 'alice', scope: 'user', user_id: 'user-123', sha256: hashApiKey(key) }),
      expect.objectContaining({ name: 'ci', scope: 'admin', sha256: hashApiKey(adminKey) }),
    ]);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    await expect(apikey('--name', 'ci', '--scope', 'admin', '--file', file)).rejects.toMatchObject({
      stderr: expect.stringContaining('already exists'),
    });
    await expect(apikey('--name', 'x', '--scope', 'user', '--file', file)).rejects.toMatchObject({
      stderr: expect.stringContaining('--user'),
    });

    const t = await createTestApp({ env: { API_KEYS_FILE: file } });
    try {
      const own = await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/user-123', headers: { authorization: `Bearer ${key}` } });
      expect(own.statusCode).toBe(200);
      const other = await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/user-9', headers: { authorization: `Bearer ${key}` } });
      expect(other.statusCode).toBe(403);
      const all = await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/user-9', headers: { authorization: `Bearer ${adminKey}` } });
      expect(all.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
