import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_ADMIN, Principal } from '../../auth/principal';
import { InvalidRepoUrlException } from '../repo-url';
import { servicePaths } from './local-path';
import { RepoHostForbiddenException, RepoHostUnresolvedException, RepoPathForbiddenException, RepoUrlForbiddenException } from './repo-source.exceptions';
import { gitCanPin, HostLookup, RepoSourceConfig, RepoSourcePolicy } from './repo-source.policy';

const ALICE: Principal = { keyName: 'alice', scope: 'user', userId: 'alice' };

/** A resolver with fixed answers: the policy's own lookup is the part under test here, not DNS. */
const fixedLookup =
  (answers: Record<string, string[]>): HostLookup =>
  async (host) => {
    const a = answers[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a;
  };

describe('RepoSourcePolicy', () => {
  let scratch: string;
  let dataDir: string;
  let workspaces: string;
  let config: RepoSourceConfig;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'asa-repo-policy-'));
    dataDir = join(scratch, 'data');
    workspaces = join(scratch, 'workspaces');
    mkdirSync(dataDir);
    mkdirSync(join(workspaces, 'asa-task-other-abc', 'repo'), { recursive: true });
    // Work trees as git clone expects them (a .git folder); a plain folder beside them.
    mkdirSync(join(scratch, 'repos', 'ok', '.git'), { recursive: true });
    mkdirSync(join(scratch, 'repos', 'plain'), { recursive: true });
    writeFileSync(join(dataDir, 'asa.db'), '');
    mkdirSync(join(dataDir, 'beside-the-db', '.git'), { recursive: true });
    symlinkSync(process.cwd(), join(scratch, 'link-to-cwd'));
    symlinkSync('/proc/self/cwd', join(scratch, 'link-to-proc'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  beforeEach(() => {
    config = {
      repoUrlSchemes: ['https', 'http', 'file', 'local'],
      allowLocalReposForUsers: false,
      repoHostAllowlist: [],
      // This checkout is the service's working folder, as it is when the service runs from it.
      servicePaths: servicePaths({ workingDir: process.cwd(), dataFiles: [join(dataDir, 'asa.db')], workspaceDir: workspaces }),
    };
  });
  const policy = (over: Partial<RepoSourceConfig> = {}, lookup: HostLookup = fixedLookup({})) => new RepoSourcePolicy({ ...config, ...over }, lookup);

  describe('kinds of repo_url by key', () => {
    it('admin keys keep TASK_REPO_URL_SCHEMES; user keys get https only unless TASK_ALLOW_LOCAL_REPOS_FOR_USERS', () => {
      expect(policy().schemesFor(LOCAL_ADMIN)).toEqual(['https', 'http', 'file', 'local']);
      expect(policy().schemesFor(ALICE)).toEqual(['https']);
      expect(policy({ allowLocalReposForUsers: true }).schemesFor(ALICE)).toEqual(['https', 'http', 'file', 'local']);
      expect(policy({ allowLocalReposForUsers: true, repoUrlSchemes: ['https', 'file'] }).schemesFor(ALICE)).toEqual(['https', 'file']);
      expect(policy({ repoUrlSchemes: ['file'] }).schemesFor(ALICE)).toEqual([]);
    });

    it.each([
      ['http://git.example.com/r.git', /http URLs are not allowed for user-scoped API keys/],
      ['file:///srv/repo', /file URLs are not allowed for user-scoped API keys/],
      ['/srv/repo', /local paths are not allowed for user-scoped API keys/],
    ])('a user key submitting %s gets a 403 naming the variables', async (url, message) => {
      const err = await policy().checkSubmit(url, ALICE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RepoUrlForbiddenException);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).toMatch(/TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true/);
      expect((err as Error).message).toMatch(/TASK_REPO_URL_SCHEMES/);
    });

    it('a kind missing from TASK_REPO_URL_SCHEMES is a 400 for every key', async () => {
      const p = policy({ repoUrlSchemes: ['https'], allowLocalReposForUsers: true });
      await expect(p.checkSubmit('/srv/repo', ALICE)).rejects.toThrow(InvalidRepoUrlException);
      await expect(p.checkSubmit('/srv/repo', LOCAL_ADMIN)).rejects.toThrow(/TASK_REPO_URL_SCHEMES/);
      const strict = await policy({ repoUrlSchemes: ['https', 'ssh'] }).checkSubmit('ssh://git@github.com/a/b.git', ALICE).catch((e: Error) => e);
      expect(strict).toBeInstanceOf(RepoUrlForbiddenException);
    });
  });

  describe('local paths (every key)', () => {
    it.each([
      ['/proc/self/cwd', /under \/proc/],
      ['/proc/self/root', /under \/proc/],
      ['/proc/1/cwd/', /under \/proc/],
      ['file:///proc/self/cwd', /under \/proc/],
      ['/dev/fd/3', /under \/dev/],
      ['/sys/kernel', /under \/sys/],
    ])('refuses %s', async (path, message) => {
      await expect(policy().checkSubmit(path, LOCAL_ADMIN)).rejects.toThrow(message);
    });

    it('refuses the working folder, a folder above it, the repository it is in, and symlinks to them', async () => {
      for (const path of [process.cwd(), `${process.cwd()}/`, '/', join(process.cwd(), '..'), join(process.cwd(), 'src'), join(scratch, 'link-to-cwd')]) {
        const err = await policy().checkSubmit(path, LOCAL_ADMIN).catch((e: unknown) => e);
        expect(err, path).toBeInstanceOf(RepoPathForbiddenException);
        expect((err as Error).message, path).toMatch(/service's own/);
      }
      // A symlink to /proc/self/cwd resolves (in this process) to the working folder.
      await expect(policy().checkSubmit(join(scratch, 'link-to-proc'), LOCAL_ADMIN)).rejects.toThrow(RepoPathForbiddenException);
    });

    it("refuses the database's folder (it contains the database) but not a repository beside the database", async () => {
      await expect(policy().checkSubmit(dataDir, LOCAL_ADMIN)).rejects.toThrow(/service's own files/);
      await expect(policy().checkSubmit(`file://${dataDir}`, LOCAL_ADMIN)).rejects.toThrow(/service's own files/);
      await expect(policy().checkSubmit(join(dataDir, 'asa.db'), LOCAL_ADMIN)).rejects.toThrow(/service's own files/);
      await expect(policy().checkSubmit(join(dataDir, 'beside-the-db'), LOCAL_ADMIN)).resolves.toMatchObject({ scheme: 'local' });
    });

    it("refuses another task's workspace", async () => {
      await expect(policy().checkSubmit(join(workspaces, 'asa-task-other-abc', 'repo'), LOCAL_ADMIN)).rejects.toThrow(/task workspace/);
    });

    it('accepts an ordinary repository path; one that does not exist or is not a repository is a 400 at submit', async () => {
      await expect(policy().checkSubmit(join(scratch, 'repos', 'ok'), LOCAL_ADMIN)).resolves.toMatchObject({ scheme: 'local' });
      await expect(policy().checkSubmit(`file://${join(scratch, 'repos', 'ok')}`, LOCAL_ADMIN)).resolves.toMatchObject({ scheme: 'file' });
      const missing = await policy().checkSubmit(join(scratch, 'repos', 'missing', 'x'), LOCAL_ADMIN).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(InvalidRepoUrlException);
      expect((missing as Error).message).toMatch(/^repo_url: ".*missing\/x" does not exist on the service's machine$/);
      await expect(policy().checkSubmit(join(scratch, 'repos', 'plain'), LOCAL_ADMIN)).rejects.toThrow(/is a folder but not a git repository/);
      await expect(policy({ allowLocalReposForUsers: true }).checkSubmit(join(scratch, 'repos', 'ok'), ALICE)).resolves.toMatchObject({ scheme: 'local' });
      await expect(policy({ allowLocalReposForUsers: true }).checkSubmit('/proc/self/cwd', ALICE)).rejects.toThrow(RepoPathForbiddenException);
    });
  });

  describe('hosts at submit (no lookup)', () => {
    it.each([
      'https://127.0.0.1/r.git',
      'https://2130706433/r.git',
      'https://0x7f.1/r.git',
      'https://0177.0.0.1/r.git',
      'https://[::1]/r.git',
      'https://[::ffff:127.0.0.1]/r.git',
      'https://localhost/r.git',
      'https://LOCALHOST./r.git',
      'https://git.localhost/r.git',
      'https://169.254.169.254/latest/meta-data',
      'https://metadata.google.internal/computeMetadata/v1',
      'https://10.1.2.3/r.git',
      'https://[fd00::1]/r.git',
      'https://100.64.1.1/r.git',
      'https://0.0.0.0/r.git',
    ])('refuses %s for user and admin keys, naming TASK_REPO_HOST_ALLOWLIST', async (url) => {
      for (const who of [ALICE, LOCAL_ADMIN]) {
        const err = await policy().checkSubmit(url, who).catch((e: unknown) => e);
        expect(err, url).toBeInstanceOf(RepoHostForbiddenException);
        expect((err as Error).message).toMatch(/^repo_url host/);
        expect((err as Error).message).toMatch(/TASK_REPO_HOST_ALLOWLIST/);
      }
    });

    it.each(['ssh://2130706433/r.git', 'ssh://git@0x7f.1/r.git', 'git@127.0.0.1:r.git', 'git@[fd00:0:0:0:0:0:0:1]:r.git', 'git://[::ffff:10.0.0.1]/r.git', 'git://localhost/r.git'])(
      'refuses %s (ssh and git hosts, which the URL parser leaves as written)',
      async (url) => {
        await expect(policy({ repoUrlSchemes: ['ssh', 'git'] }).checkSubmit(url, LOCAL_ADMIN)).rejects.toThrow(RepoHostForbiddenException);
      },
    );

    it('refuses a percent-encoded ssh host (checked as one string, resolved as another)', async () => {
      await expect(policy({ repoUrlSchemes: ['ssh'] }).checkSubmit('ssh://%31%32%37.0.0.1/r.git', LOCAL_ADMIN)).rejects.toThrow(/percent-encoded/);
    });

    it('allows what TASK_REPO_HOST_ALLOWLIST lists: a name, an address, a range', async () => {
      const p = policy({ repoHostAllowlist: ['localhost', '10.0.0.0/8', '::1'] });
      await expect(p.checkSubmit('https://localhost/r.git', ALICE)).resolves.toBeTruthy();
      await expect(p.checkSubmit('https://10.9.8.7/r.git', ALICE)).resolves.toBeTruthy();
      await expect(p.checkSubmit('https://0x0a.1/r.git', ALICE)).resolves.toBeTruthy();
      await expect(p.checkSubmit('https://[::1]/r.git', ALICE)).resolves.toBeTruthy();
      await expect(p.checkSubmit('https://127.0.0.1/r.git', ALICE)).rejects.toThrow(RepoHostForbiddenException);
    });

    it('leaves other names to the clone-time check', async () => {
      await expect(policy().checkSubmit('https://github.com/example/repo', ALICE)).resolves.toMatchObject({ scheme: 'https' });
    });
  });

  describe('at clone time', () => {
    it('pins git to the checked addresses and turns redirects off', async () => {
      const p = policy({}, fixedLookup({ 'git.example.com': ['140.82.112.3', '2606:50c0:8000::154'] }));
      const { repo, gitConfig } = await p.prepareClone('https://git.example.com/r.git');
      expect(repo.scheme).toBe('https');
      expect(gitConfig).toEqual(['-c', 'http.followRedirects=false', '-c', 'http.curloptResolve=git.example.com:443:140.82.112.3,[2606:50c0:8000::154]']);
      const port = await policy({}, fixedLookup({ 'git.example.com': ['140.82.112.3'] })).prepareClone('http://GIT.example.com:8080/r.git');
      // Both spellings: curl looks up the host as the URL string has it.
      expect(port.gitConfig).toContain('http.curloptResolve=GIT.example.com:8080:140.82.112.3');
      expect(port.gitConfig).toContain('http.curloptResolve=git.example.com:8080:140.82.112.3');
    });

    it('refuses a name when any of its addresses is internal, naming the address and the variable', async () => {
      const p = policy({}, fixedLookup({ 'git.example.com': ['140.82.112.3', '10.0.0.7'], 'meta.example.com': ['::ffff:169.254.169.254'] }));
      const err = await p.prepareClone('https://git.example.com/r.git').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RepoHostForbiddenException);
      expect((err as Error).message).toBe(
        'repo_url host "git.example.com" resolves to 10.0.0.7, a private (RFC 1918) address; internal addresses are never cloned: add the host (or its address or range) to TASK_REPO_HOST_ALLOWLIST to allow it',
      );
      await expect(p.prepareClone('https://meta.example.com/r.git')).rejects.toThrow(/resolves to 169\.254\.169\.254, a link-local/);
    });

    it('allows an internal address when the name, the address or its range is allowlisted', async () => {
      const lookup = fixedLookup({ 'git.corp.example': ['10.0.0.7'] });
      await expect(policy({ repoHostAllowlist: ['git.corp.example'] }, lookup).prepareClone('https://git.corp.example/r.git')).resolves.toBeTruthy();
      await expect(policy({ repoHostAllowlist: ['10.0.0.0/24'] }, lookup).prepareClone('https://git.corp.example/r.git')).resolves.toBeTruthy();
      await expect(policy({ repoHostAllowlist: ['10.0.1.0/24'] }, lookup).prepareClone('https://git.corp.example/r.git')).rejects.toThrow(RepoHostForbiddenException);
    });

    it('ssh and git hosts are resolved and checked too (their own programs connect, so they are not pinned)', async () => {
      const p = policy({ repoUrlSchemes: ['ssh', 'git'] }, fixedLookup({ 'git.example.com': ['127.0.0.1'], 'pub.example.com': ['140.82.112.3'] }));
      await expect(p.prepareClone('git@git.example.com:a/b.git')).rejects.toThrow(/resolves to 127\.0\.0\.1/);
      await expect(p.prepareClone('git://git.example.com/a/b.git')).rejects.toThrow(/resolves to 127\.0\.0\.1/);
      await expect(p.prepareClone('ssh://git@pub.example.com/a/b.git')).resolves.toMatchObject({ gitConfig: ['-c', 'http.followRedirects=false'] });
    });

    it('pins only with a git that reads http.curloptResolve (2.37 and later)', () => {
      expect(gitCanPin('git version 2.39.5\n')).toBe(true);
      expect(gitCanPin('git version 2.37.0')).toBe(true);
      expect(gitCanPin('git version 3.0.1')).toBe(true);
      expect(gitCanPin('git version 2.36.6')).toBe(false);
      expect(gitCanPin('git version 1.9.9')).toBe(false);
      expect(gitCanPin('')).toBe(false);
    });

    it('a name that does not resolve is reported as such', async () => {
      await expect(policy().prepareClone('https://nowhere.example/r.git')).rejects.toThrow(RepoHostUnresolvedException);
    });

    it('checks host literals and local paths again, without a lookup', async () => {
      await expect(policy().prepareClone('http://127.0.0.1:9/r.git')).rejects.toThrow(RepoHostForbiddenException);
      await expect(policy().prepareClone('/proc/self/cwd')).rejects.toThrow(RepoPathForbiddenException);
      await expect(policy().prepareClone(join(scratch, 'repos', 'ok'))).resolves.toMatchObject({ gitConfig: [] });
    });
  });
});
