import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { initRepo } from '../../../demo/git-init';
import { parseRepoUrl } from '../repo-url';
import { GitCommandError, runGit } from './git';
import { PatchApplier } from './patch-applier';
import { pickPassthroughEnv } from './sandbox-env';
import { cloneArgs, Workspace } from './workspace';

const gitEnv = pickPassthroughEnv({ PATH: process.env.PATH });

/** Real git repositories in scratch folders. */
describe('Workspace (real git)', () => {
  let scratch: string;
  let origin: string;
  const open: Workspace[] = [];

  const create = async () => {
    const ws = await Workspace.create('task-1', { parentDir: join(scratch, 'work'), gitEnv, gitTimeoutMs: 20_000 });
    open.push(ws);
    return ws;
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'asa-ws-spec-'));
    origin = join(scratch, 'origin');
    mkdirSync(join(origin, 'src'), { recursive: true });
    writeFileSync(join(origin, 'src/math.js'), 'function add(a, b) {\n  return a - b;\n}\nmodule.exports = { add };\n');
    writeFileSync(join(origin, 'README.md'), '# sample\n');
    await initRepo(origin);
    // Two more commits: a shallow clone must bring only the last one.
    for (const n of [1, 2]) {
      writeFileSync(join(origin, 'CHANGES.md'), `change ${n}\n`);
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', `change ${n}`, '--allow-empty'], { cwd: origin });
      execFileSync('git', ['add', 'CHANGES.md'], { cwd: origin });
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', `add ${n}`, '--allow-empty'], { cwd: origin });
    }
  });
  afterAll(async () => {
    for (const ws of open) await ws.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('builds clone arguments that allow only the address transport and end options before it', () => {
    const args = cloneArgs(parseRepoUrl('/srv/repos/app'), '/tmp/ws/repo');
    expect(args).toEqual(expect.arrayContaining(['protocol.allow=never', 'protocol.file.allow=always', 'clone', '--depth', '1']));
    expect(args.slice(-3)).toEqual(['--', 'file:///srv/repos/app', '/tmp/ws/repo']);
    const https = cloneArgs(parseRepoUrl('https://github.com/example/repo.git'), '/d');
    expect(https).toContain('protocol.https.allow=always');
    expect(https).not.toContain('protocol.file.allow=always');
    expect(https.slice(-3)).toEqual(['--', 'https://github.com/example/repo.git', '/d']);
  });

  it('shallow-clones a local path and a file:// URL into repo/ with home/ and tmp/ beside it', async () => {
    for (const url of [origin, `file://${origin}`]) {
      const ws = await create();
      await ws.clone(parseRepoUrl(url));
      expect(readFileSync(join(ws.repoDir, 'src/math.js'), 'utf8')).toContain('return a - b');
      expect(execFileSync('git', ['rev-list', '--count', 'HEAD'], { cwd: ws.repoDir, encoding: 'utf8' }).trim()).toBe('1');
      expect(existsSync(ws.homeDir) && existsSync(ws.tmpDir)).toBe(true);
      expect((await ws.trackedFiles()).sort()).toEqual(['CHANGES.md', 'README.md', 'src/math.js']);
    }
  });

  it('git refuses a transport outside the allowlist even if an address slipped past validation', async () => {
    const marker = join(scratch, 'pwned');
    const ws = await create();
    // ext:: would run a command; the validator rejects it, and so does git's protocol allowlist.
    expect(() => parseRepoUrl(`ext::sh -c touch% ${marker}`)).toThrow(/remote-helper|whitespace/);
    const err = await ws.clone({ url: `ext::sh -c touch% ${marker}`, scheme: 'file' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GitCommandError);
    expect((err as GitCommandError).stderr).toMatch(/transport 'ext' not allowed/);
    expect(existsSync(marker)).toBe(false);
  });

  it('rejects addresses git could read as an option; after `--` git would not read one anyway', async () => {
    const marker = join(scratch, 'pwned-by-option');
    expect(() => parseRepoUrl(`--upload-pack=touch%20${marker}`)).toThrow(/must not start with "-"/);
    expect(() => parseRepoUrl('-u')).toThrow(/must not start with "-"/);
    const ws = await create();
    const err = (await ws.clone({ url: `--upload-pack=touch ${marker}`, scheme: 'file' }).catch((e: unknown) => e)) as GitCommandError;
    expect(err).toBeInstanceOf(GitCommandError);
    expect(err.stderr).toMatch(/does not exist|not a git repository|Could not read/i);
    expect(existsSync(marker)).toBe(false);
  });

  it('a failed clone reports git stderr; an aborted one says so', async () => {
    const ws = await create();
    const err = (await ws.clone(parseRepoUrl(join(scratch, 'does-not-exist'))).catch((e: unknown) => e)) as GitCommandError;
    expect(err).toBeInstanceOf(GitCommandError);
    expect(err.message).toMatch(/git clone failed/);
    const controller = new AbortController();
    controller.abort();
    const aborted = (await runGit(['--version'], { env: gitEnv, timeoutMs: 5_000, signal: controller.signal }).catch((e: unknown) => e)) as GitCommandError;
    expect(aborted.aborted).toBe(true);
  });

  it('reset puts the checkout back: edits undone, deletions restored, new files removed', async () => {
    const ws = await create();
    await ws.clone(parseRepoUrl(origin));
    writeFileSync(join(ws.repoDir, 'src/math.js'), 'broken');
    unlinkSync(join(ws.repoDir, 'README.md'));
    mkdirSync(join(ws.repoDir, 'new-dir'));
    writeFileSync(join(ws.repoDir, 'new-dir/file.js'), 'x');
    await ws.reset();
    expect(readFileSync(join(ws.repoDir, 'src/math.js'), 'utf8')).toContain('return a - b');
    expect(existsSync(join(ws.repoDir, 'README.md'))).toBe(true);
    expect(existsSync(join(ws.repoDir, 'new-dir'))).toBe(false);
  });

  it('dispose removes the whole workspace', async () => {
    const ws = await create();
    await ws.clone(parseRepoUrl(origin));
    await ws.dispose();
    expect(existsSync(ws.root)).toBe(false);
  });

  describe('PatchApplier', () => {
    const applier = new PatchApplier();
    const fix = ['--- a/src/math.js', '+++ b/src/math.js', '@@ -1,3 +1,3 @@', ' function add(a, b) {', '-  return a - b;', '+  return a + b;', ' }', ''].join('\n');

    it('applies a diff that fits, even with wrong hunk counts', async () => {
      const ws = await create();
      await ws.clone(parseRepoUrl(origin));
      const sloppy = fix.replace('@@ -1,3 +1,3 @@', '@@ -1,9 +1,9 @@');
      expect(await applier.apply(ws, sloppy, 'a1.patch')).toEqual({ applied: true });
      expect(readFileSync(join(ws.repoDir, 'src/math.js'), 'utf8')).toContain('return a + b');
      // The patch file lives outside the checkout.
      expect(existsSync(join(ws.root, 'a1.patch'))).toBe(true);
      expect(execFileSync('git', ['status', '--porcelain'], { cwd: ws.repoDir, encoding: 'utf8' }).trim()).toBe('M src/math.js');
    });

    it('applies a diff without a/ b/ prefixes', async () => {
      const ws = await create();
      await ws.clone(parseRepoUrl(origin));
      const p0 = fix.replace('--- a/src/math.js', '--- src/math.js').replace('+++ b/src/math.js', '+++ src/math.js');
      expect(await applier.apply(ws, p0, 'a1.patch')).toEqual({ applied: true });
      expect(readFileSync(join(ws.repoDir, 'src/math.js'), 'utf8')).toContain('return a + b');
    });

    it('refuses a diff that does not fit, changes nothing, and says why', async () => {
      const ws = await create();
      await ws.clone(parseRepoUrl(origin));
      const wrong = fix.replace(' function add(a, b) {', ' function sum(a, b) {');
      const r = await applier.apply(ws, wrong, 'a1.patch');
      expect(r.applied).toBe(false);
      expect(r.applied === false && r.error).toMatch(/patch failed|does not apply/);
      expect(r.applied === false && r.error).not.toContain(ws.root);
      expect(readFileSync(join(ws.repoDir, 'src/math.js'), 'utf8')).toContain('return a - b');
    });

    it('refuses a diff that writes outside the checkout', async () => {
      const ws = await create();
      await ws.clone(parseRepoUrl(origin));
      const escape = ['--- /dev/null', '+++ b/../../escaped.txt', '@@ -0,0 +1 @@', '+pwned', ''].join('\n');
      const r = await applier.apply(ws, escape, 'a1.patch');
      expect(r.applied).toBe(false);
      expect(existsSync(join(ws.root, 'escaped.txt'))).toBe(false);
    });
  });
});
