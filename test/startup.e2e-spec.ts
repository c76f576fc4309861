import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildService, freePort, startService, waitForHttp } from './support/service-process';

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

  it('refuses to start on a malformed API keys file, ending with a plain message naming the file and entry', async () => {
    writeFileSync(join(dir, 'keys.json'), '{ "keys": [ { "name": "x" } ] }');
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()), API_KEYS_FILE: join(dir, 'keys.json') } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    // Nest's own ExceptionHandler logs the error with its stack first; the last line is ours.
    const lastLine = svc.output().trim().split('\n').pop();
    expect(lastLine).toMatch(new RegExp(`^API keys file ${join(dir, 'keys.json')}: entry 0 \\("x"\\): scope must be`));
  }, 60_000);
});
