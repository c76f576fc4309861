import { execFileSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostLookup, REPO_HOST_LOOKUP, systemHostLookup } from '../src/modules/tasks/repo-source/repo-source.policy';
import { TASK_AGENTS } from '../src/plugins/sdk';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { GitHttpServer, startGitHttpServer } from './support/git-http-server';
import { ADMIN_KEY, ALICE_KEY, bearer, BuggyRepo, createBuggyRepo, isFinal, ScriptedAgent, waitForTask, writeApiKeys } from './support/tasks';

const fenced = (diff: string) => `Here is the fix:\n\n\`\`\`diff\n${diff}\`\`\`\n`;

/**
 * Which repositories a task may clone (issue 7): through the real AppModule and HTTP API with API
 * keys, real git, and a real git HTTP server (`git http-backend`) on 127.0.0.1 that records every
 * request, so "refused" also means "git never sent it a request".
 */
describe('repository sources a task may clone', () => {
  let dir: string;
  let repo: BuggyRepo;
  /** A bare copy of `repo`, served over HTTP as /repo.git. */
  let served: string;
  let keysFile: string;
  const admin = bearer(ADMIN_KEY);
  const alice = bearer(ALICE_KEY);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-repo-sources-'));
    chmodSync(dir, 0o711); // the sandbox's user (uid 65534 when tests run as root) passes through to the workspaces
    repo = createBuggyRepo(dir);
    served = join(dir, 'served');
    execFileSync('git', ['clone', '-q', '--bare', repo.path, join(served, 'repo.git')]);
    keysFile = writeApiKeys(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const submitTo = (t: TestApp) => (repoUrl: string, headers: Record<string, string>, bug = 'quick') =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/task/submit',
      headers,
      payload: { repo_url: repoUrl, bug_description: bug, test_command: repo.testCommand, max_attempts: 1 },
    });

  describe('defaults: user keys clone https only; internal hosts and service paths refused for every key', () => {
    let t: TestApp;
    let listener: GitHttpServer;
    const agent = new ScriptedAgent();
    let submit: ReturnType<typeof submitTo>;

    beforeAll(async () => {
      // Stands where an internal service would: it must never see a request.
      listener = await startGitHttpServer({ projectRoot: served });
      t = await createTestApp({
        env: { API_KEYS_FILE: keysFile, TASK_POLL_INTERVAL_MS: '100', TASK_SHUTDOWN_GRACE_MS: '0' },
        override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]),
      });
      submit = submitTo(t);
    });
    afterAll(async () => {
      await t?.close();
      await listener?.close();
    });

    it.each([
      ['http://127.0.0.1:<port>/repo.git', 'http URLs'],
      ['<repo>', 'local paths'],
      ['/proc/self/cwd', 'local paths'],
      ['file://<repo>', 'file URLs'],
    ])('a user key submitting %s gets 403 TASK_REPO_URL_FORBIDDEN naming repo_url and the variables', async (template, what) => {
      const url = template.replace('<port>', String(listener.port)).replace('<repo>', repo.path);
      const res = await submit(url, alice);
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json()).toMatchObject({ code: 'TASK_REPO_URL_FORBIDDEN' });
      expect(res.json().message).toContain(`repo_url: ${what} are not allowed for user-scoped API keys`);
      expect(res.json().message).toContain('TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true');
      expect(res.json().message).toContain('TASK_REPO_URL_SCHEMES');
    });

    it.each([
      'https://127.0.0.1:<port>/repo.git',
      'https://2130706433:<port>/repo.git',
      'https://0x7f.1:<port>/repo.git',
      'https://0177.0.0.01:<port>/repo.git',
      'https://[::ffff:127.0.0.1]:<port>/repo.git',
      'https://[::1]:<port>/repo.git',
      'https://localhost:<port>/repo.git',
      'https://LocalHost.:<port>/repo.git',
      'https://git.localhost:<port>/repo.git',
      'https://169.254.169.254/latest/meta-data/',
      'https://metadata.google.internal/computeMetadata/v1/',
      'https://192.168.0.10/repo.git',
      'https://100.64.0.1/repo.git',
    ])('an https URL to an internal address is a 400 TASK_REPO_HOST_FORBIDDEN: %s', async (template) => {
      const res = await submit(template.replace('<port>', String(listener.port)), alice);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ code: 'TASK_REPO_HOST_FORBIDDEN' });
      expect(res.json().message).toMatch(/^repo_url host .* address|^repo_url host .* name/);
      expect(res.json().message).toContain('TASK_REPO_HOST_ALLOWLIST');
    });

    it('a user key may submit an https URL', async () => {
      const res = await submit('https://github.com/example/repo', alice);
      expect(res.statusCode, res.body).toBe(202);
      expect(await waitForTask(t.app, res.json().task_id, isFinal, { headers: alice })).toMatchObject({ status: 'succeeded', user_id: 'alice' });
    });

    it('an admin key keeps local paths and file URLs (TASK_REPO_URL_SCHEMES), but not the service\'s own folder, /proc or internal hosts', async () => {
      expect((await submit(repo.path, admin)).statusCode).toBe(202);
      expect((await submit(`file://${repo.path}`, admin)).statusCode).toBe(202);
      for (const path of ['/proc/self/cwd', '/proc/self/root', process.cwd(), join(process.cwd(), 'src')]) {
        const res = await submit(path, admin);
        expect(res.statusCode, path).toBe(400);
        expect(res.json(), path).toMatchObject({ code: 'TASK_REPO_PATH_FORBIDDEN' });
        expect(res.json().message, path).toMatch(/^repo_url: /);
      }
      const internal = await submit(`http://127.0.0.1:${listener.port}/repo.git`, admin);
      expect(internal.statusCode).toBe(400);
      expect(internal.json()).toMatchObject({ code: 'TASK_REPO_HOST_FORBIDDEN' });
      expect(internal.json().message).toBe(
        `repo_url host 127.0.0.1 is 127.0.0.1, a loopback address; internal addresses are never cloned: add the host (or its address or range) to TASK_REPO_HOST_ALLOWLIST to allow it`,
      );
    });

    it('none of the refused submissions made a task or reached the internal server', async () => {
      const list = (await t.app.inject({ method: 'GET', url: '/api/v1/tasks?user_id=alice', headers: admin })).json();
      expect(list.tasks.map((x: { repo_url: string }) => x.repo_url)).toEqual(['https://github.com/example/repo']);
      expect(listener.requests).toEqual([]);
    });
  });

  describe('TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true', () => {
    let t: TestApp;
    let fake: FakeOpenAi;
    let submit: ReturnType<typeof submitTo>;

    beforeAll(async () => {
      fake = await FakeOpenAi.start({ defaultReply: { content: fenced(repo.goodDiff) } });
      t = await createTestApp({
        env: {
          API_KEYS_FILE: keysFile,
          TASK_ALLOW_LOCAL_REPOS_FOR_USERS: 'true',
          OPENAI_BASE_URL: fake.baseUrl,
          OPENAI_API_KEY: 'sk-test-not-real',
          OPENAI_MAX_RETRIES: '0',
          TASK_POLL_INTERVAL_MS: '100',
          TASK_WORKSPACE_DIR: join(dir, 'workspaces-users'),
          TASK_SHUTDOWN_GRACE_MS: '0',
        },
      });
      submit = submitTo(t);
    });
    afterAll(async () => {
      await t?.close();
      await fake?.close();
    });

    it('a user key may clone a local path and a file URL (the real agent fixes the bug in the clone)', async () => {
      for (const url of [repo.path, `file://${repo.path}`]) {
        const res = await submit(url, alice, 'add(2, 3) returns -1 instead of 5');
        expect(res.statusCode, res.body).toBe(202);
        const done = await waitForTask(t.app, res.json().task_id, isFinal, { headers: alice, timeoutMs: 60_000 });
        expect(done, url).toMatchObject({ status: 'succeeded', user_id: 'alice', failure_reason: null });
      }
    });

    it('the service\'s own paths and internal hosts stay refused', async () => {
      for (const url of ['/proc/self/cwd', process.cwd(), 'file:///proc/self/cwd']) {
        const res = await submit(url, alice);
        expect(res.statusCode, url).toBe(400);
        expect(res.json(), url).toMatchObject({ code: 'TASK_REPO_PATH_FORBIDDEN' });
      }
      const res = await submit('http://127.0.0.1:9/repo.git', alice);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'TASK_REPO_HOST_FORBIDDEN' });
    });
  });

  /**
   * The clone-time check: names that look harmless at submit but resolve to 127.0.0.1. The
   * resolver is the service's edge to DNS: here it answers for two test names (which exist in no
   * DNS, so a clone that works through one of them proves git used the pinned address and did no
   * lookup of its own); every other name goes to the system resolver.
   */
  describe('at clone time, after name resolution', () => {
    let t: TestApp;
    let fake: FakeOpenAi;
    let git: GitHttpServer;
    let redirectTarget: GitHttpServer;
    let redirector: GitHttpServer;
    let submit: ReturnType<typeof submitTo>;
    const testNames: Record<string, string[]> = { 'git.allowed.test': ['127.0.0.1'], 'git.blocked.test': ['127.0.0.1'] };
    const resolver: HostLookup = async (host) => testNames[host] ?? systemHostLookup(host);
    let ownNameIsLoopback = false;

    beforeAll(async () => {
      git = await startGitHttpServer({ projectRoot: served });
      redirectTarget = await startGitHttpServer({ projectRoot: served });
      redirector = await startGitHttpServer({ redirectTo: redirectTarget.baseUrl });
      fake = await FakeOpenAi.start({ defaultReply: { content: fenced(repo.goodDiff) } });
      t = await createTestApp({
        env: {
          TASK_REPO_HOST_ALLOWLIST: 'git.allowed.test',
          OPENAI_BASE_URL: fake.baseUrl,
          OPENAI_API_KEY: 'sk-test-not-real',
          OPENAI_MAX_RETRIES: '0',
          TASK_POLL_INTERVAL_MS: '100',
          TASK_WORKSPACE_DIR: join(dir, 'workspaces-clone'),
          TASK_SHUTDOWN_GRACE_MS: '0',
        },
        override: (b) => b.overrideProvider(REPO_HOST_LOOKUP).useValue(resolver),
      });
      submit = submitTo(t);
      const own = await lookup(hostname(), { all: true }).catch(() => []);
      ownNameIsLoopback = own.length > 0 && own.every((a) => a.address === '127.0.0.1');
    });
    afterAll(async () => {
      await t?.close();
      await fake?.close();
      await Promise.all([git, redirectTarget, redirector].map((s) => s?.close()));
    });

    const runToEnd = async (url: string) => {
      const res = await submit(url, {}, 'add(2, 3) returns -1 instead of 5');
      expect(res.statusCode, `${url}: ${res.body}`).toBe(202);
      return waitForTask(t.app, res.json().task_id, isFinal, { timeoutMs: 60_000 });
    };

    it('a name resolving to 127.0.0.1 passes submit, then the task fails invalid_repo_url and git never contacts the server', async () => {
      const done = await runToEnd(`http://git.blocked.test:${git.port}/repo.git`);
      expect(done).toMatchObject({ status: 'failed', failure_reason: 'invalid_repo_url', attempts: 0 });
      expect(done.failure_detail).toBe(
        'repo_url host "git.blocked.test" resolves to 127.0.0.1, a loopback address; internal addresses are never cloned: add the host (or its address or range) to TASK_REPO_HOST_ALLOWLIST to allow it',
      );
      expect(git.requests).toEqual([]);
      expect(fake.chatRequests()).toHaveLength(0);
    });

    it("the machine's own host name (the system resolver: /etc/hosts maps it to 127.0.0.1 here) is refused the same way", async (ctx) => {
      if (!ownNameIsLoopback) ctx.skip(); // only where the system resolver maps the host name to 127.0.0.1 alone
      const done = await runToEnd(`http://${hostname()}:${git.port}/repo.git`);
      expect(done).toMatchObject({ status: 'failed', failure_reason: 'invalid_repo_url' });
      expect(done.failure_detail).toContain(`"${hostname()}" resolves to 127.0.0.1, a loopback address`);
      expect(done.failure_detail).toContain('TASK_REPO_HOST_ALLOWLIST');
      expect(git.requests).toEqual([]);
    });

    it('an allowlisted name is cloned through the real server, at the pinned address (the name is in no DNS)', async () => {
      const done = await runToEnd(`http://git.allowed.test:${git.port}/repo.git`);
      expect(done).toMatchObject({ status: 'succeeded', failure_reason: null, attempts: 1 });
      expect(git.requests.length).toBeGreaterThan(0);
      expect(git.requests[0].url).toBe('/repo.git/info/refs?service=git-upload-pack');
      expect(new Set(git.requests.map((r) => r.host))).toEqual(new Set([`git.allowed.test:${git.port}`]));
    });

    it('a redirect from an allowed server to 127.0.0.1 is not followed', async () => {
      const done = await runToEnd(`http://git.allowed.test:${redirector.port}/repo.git`);
      expect(done).toMatchObject({ status: 'failed', failure_reason: 'clone_failed' });
      expect(done.failure_detail).toMatch(/returned error: 302/);
      expect(done.failure_detail).toContain('redirects are not followed');
      expect(redirector.requests).toHaveLength(1);
      expect(redirectTarget.requests).toEqual([]);
    });
  });
});
