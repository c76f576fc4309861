import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS } from '../src/database/migration-list';
import { createScratchPostgres, describePostgres } from './support/postgres';
import { buildService, freePort, PROJECT_ROOT, startService, waitForHttp } from './support/service-process';

// The built service as a new user runs it: `node dist/main.js` in an empty folder, no configuration.
describe('starting the built service', () => {
  let dir: string;
  beforeAll(() => {
    buildService();
  }, 300_000);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-start-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('starts on SQLite with no configuration, creates data/asa.db, serves /health and /docs, stops on SIGTERM', async () => {
    const port = await freePort();
    const svc = startService({ cwd: dir, env: { PORT: String(port) } });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000, svc);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);
      expect(existsSync(join(dir, 'data/asa.db'))).toBe(true);
      const doc = (await (await fetch(`http://127.0.0.1:${port}/docs-json`)).json()) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/health', '/api/v1/usage/overall']));
      expect((await fetch(`http://127.0.0.1:${port}/docs`)).status).toBe(200);
      expect(svc.output()).toMatch(/no API keys configured.*127\.0\.0\.1/);
      // What it runs with, once, after it listens; and no colour codes, as the output is a pipe.
      const out = svc.output();
      const latest = MIGRATIONS[MIGRATIONS.length - 1].name;
      expect(out).toContain(`database: SQLite file ${join(dir, 'data/asa.db')}`);
      expect(out).toContain(`migrations: ${MIGRATIONS.length} applied, latest ${latest}`);
      expect(out).toContain('LLM endpoint: https://api.openai.com/v1 (no API key: model calls are refused until OPENAI_API_KEY is set)');
      expect(out).toContain('usage sinks: database, prometheus; alert notifiers: (none); export destinations: local; task agents: bug-fix');
      expect(out).toContain(`asa-backend listening on http://127.0.0.1:${port} (docs at http://127.0.0.1:${port}/docs)`);
      expect(out.match(/asa-backend listening on/g)).toHaveLength(1);
      expect(out).not.toContain('\u001b[');
    } finally {
      // Graceful: Nest ran its shutdown hooks (the usage queues were drained), then ended by the signal.
      expect(await svc.stop('SIGTERM')).toEqual({ code: null, signal: 'SIGTERM' });
      expect(svc.output()).toMatch(/usage queues drained: database 0 written; prometheus 0 written/);
    }
  }, 90_000);

  it('refuses to start on a bad variable and names it', async () => {
    const svc = startService({ cwd: dir, env: { PORT: 'eighty' } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.output()).toContain('PORT="eighty"');
    expect(svc.output()).not.toMatch(/^\s+at /m); // a message to act on, not a stack trace
  }, 60_000);

  it('refuses to start with the placeholder key of a copied .env.example, in plain words', async () => {
    copyFileSync(join(PROJECT_ROOT, '.env.example'), join(dir, '.env'));
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()) } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.output()).toContain("OPENAI_API_KEY=(hidden): OPENAI_API_KEY is still the placeholder of .env.example: set your provider's API key");
    expect(svc.output()).not.toContain('sk-your-api-key-here');
    expect(svc.output()).not.toMatch(/^\s+at /m);
  }, 60_000);

  it('refuses to start on a malformed API keys file, ending with a plain message naming the file and entry', async () => {
    writeFileSync(join(dir, 'keys.json'), '{ "keys": [ { "name": "x" } ] }');
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()), API_KEYS_FILE: join(dir, 'keys.json') } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    // (stdout's log lines may be read after stderr's: the two pipes are not ordered against each other.)
    const lastLine = svc.errorOutput().trim().split('\n').pop();
    expect(lastLine).toMatch(new RegExp(`^API keys file ${join(dir, 'keys.json')}: entry 0 \\("x"\\): scope must be`));
    expect(svc.output()).not.toMatch(/^\s+at /m); // a message to act on, not a stack trace
  }, 60_000);

  it('refuses to start on a PRICING_FILE that does not exist, naming it (a typo must not drop negotiated prices silently)', async () => {
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()), PRICING_FILE: join(dir, 'no-such-pricing.json') } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.errorOutput().trim().split('\n').pop()).toBe(`PRICING_FILE ${join(dir, 'no-such-pricing.json')} does not exist (unset PRICING_FILE to use config/pricing.json when it is there, else the built-in catalog alone)`);
    expect(svc.output()).not.toMatch(/^\s+at /m);
  }, 60_000);

  it('refuses to start on a gateway file that is not JSON with one plain line naming the file, no stack trace', async () => {
    writeFileSync(join(dir, 'gateway.json'), '{ "routes": ');
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()), GATEWAY_FILE: join(dir, 'gateway.json') } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.errorOutput().trim().split('\n').pop()).toMatch(new RegExp(`^Gateway file ${join(dir, 'gateway.json')}: not valid JSON`));
    expect(svc.output()).not.toMatch(/^\s+at /m);
    expect(svc.output()).not.toContain('FSTDEP'); // no deprecation warning on the way either
  }, 60_000);

  // Each file a variable names that cannot be read stops the start with one plain line naming the variable or file, no stack.
  it.each([
    ['GATEWAY_FILE a directory', (d: string) => ({ GATEWAY_FILE: d }), (d: string) => `Gateway file ${d}: is a directory, not a file (EISDIR); GATEWAY_FILE names it`],
    ['API_KEYS_FILE a directory', (d: string) => ({ API_KEYS_FILE: d }), (d: string) => `API keys file ${d}: is a directory, not a file (EISDIR)`],
    ['SLACK_WEBHOOK_URL_FILE missing', (d: string) => ({ SLACK_WEBHOOK_URL_FILE: join(d, 'nonexistent') }), (d: string) => `SLACK_WEBHOOK_URL_FILE="${join(d, 'nonexistent')}": does not exist (ENOENT)`],
    ['SLACK_WEBHOOK_URL_FILE a directory', (d: string) => ({ SLACK_WEBHOOK_URL_FILE: d }), (d: string) => `SLACK_WEBHOOK_URL_FILE="${d}": is a directory, not a file (EISDIR)`],
    [
      'SMTP_PASSWORD_FILE missing',
      (d: string) => ({ SMTP_URL: 'smtp://alerts@127.0.0.1:2525', ALERT_EMAIL_FROM: 'asa@example.com', ALERT_EMAIL_TO: 'ops@example.com', SMTP_PASSWORD_FILE: join(d, 'nonexistent') }),
      (d: string) => `SMTP_PASSWORD_FILE="${join(d, 'nonexistent')}": does not exist (ENOENT)`,
    ],
    ['QUOTAS_FILE a directory', (d: string) => ({ QUOTAS_FILE: d }), (d: string) => `QUOTAS_FILE ${d} is a directory, not a file (EISDIR)`],
  ])('refuses to start when %s, with one plain line naming it, no stack trace', async (_case, env, line) => {
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()), ...env(dir) } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.errorOutput().trim().split('\n').pop()).toBe(line(dir));
    expect(svc.output()).not.toMatch(/^\s+at /m);
    expect(svc.output()).not.toContain('ExceptionHandler');
  }, 60_000);
});

describePostgres('start-up report', () => {
  let dir: string;
  beforeAll(() => {
    buildService();
    dir = mkdtempSync(join(tmpdir(), 'asa-start-pg-'));
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the PostgreSQL host and database but no user, password or key, and an unspecified bind address as such', async () => {
    const db = await createScratchPostgres();
    const port = await freePort();
    const url = new URL(db.url);
    url.username = 'postgres';
    url.password = 'pg-secret-password'; // trust authentication on the test server ignores it
    const svc = startService({
      cwd: dir,
      env: {
        PORT: String(port),
        HOST: '0.0.0.0',
        DATABASE_URL: url.toString(),
        USAGE_JOURNAL_DIR: join(dir, 'journal'),
        OPENAI_API_KEY: 'sk-must-never-be-logged-1234',
        OPENAI_BASE_URL: 'http://gateway-user:gateway-pass@127.0.0.1:9/v1?key=query-secret',
      },
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/health`, 60_000, svc);
      await new Promise((r) => setTimeout(r, 200));
      const out = svc.output();
      expect(out).toContain(`database: PostgreSQL 127.0.0.1:${url.port || '5432'}/${url.pathname.slice(1)}`);
      expect(out).toContain(`migrations: ${MIGRATIONS.length} applied`);
      expect(out).toContain('LLM endpoint: http://127.0.0.1:9/v1 (API key set)');
      expect(out).toContain(`asa-backend listening on http://0.0.0.0:${port}, every network interface: http://127.0.0.1:${port} from this machine`);
      expect(out).not.toContain(`localhost:${port}`);
      for (const secret of ['pg-secret-password', 'postgres:', 'sk-must-never-be-logged', 'gateway-user', 'gateway-pass', 'query-secret']) {
        expect(out, secret).not.toContain(secret);
      }
    } finally {
      await svc.stop('SIGTERM');
      await db.drop();
    }
  }, 120_000);
});
