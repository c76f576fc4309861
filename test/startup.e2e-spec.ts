import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
      // Graceful: Nest ran its shutdown hooks, then ended by the signal itself (not SIGKILL, not a crash).
      expect(await svc.stop('SIGTERM')).toEqual({ code: null, signal: 'SIGTERM' });
    }
  }, 90_000);

  it('refuses to start on a bad variable and names it', async () => {
    const svc = startService({ cwd: dir, env: { PORT: 'eighty' } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    expect(svc.output()).toContain('PORT="eighty"');
  }, 60_000);
});
