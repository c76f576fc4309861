import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { initRepo } from '../../../demo/git-init';
import { parseRepoUrl } from '../repo-url';
import { createSandbox } from '../sandbox/create-sandbox';
import { Sandbox } from '../sandbox/sandbox';
import { GitCommandError, runGit } from './git';
import { PatchApplier } from './patch-applier';
import { pickPassthroughEnv } from './sandbox-env';
import { cloneArgs, Workspace } from './workspace';

const gitEnv = pickPassthroughEnv({ PATH: process.env.PATH });
/** git run by the test itself on a checkout that now belongs to the sandbox's user. */
const hostGit = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'safe.directory=*', ...args], { cwd, encoding: 'utf8' });

/** Real git repositories in scratch folders; git on the checkout runs in the real bubblewrap sandbox. */
describe('Workspace (real git)', () => {
  let scratch: string;
  let origin: string;
  let sandbox: Sandbox;
  const open: Workspace[] = [];

  const create = async () => {
    const ws = await Workspace.create('task-1', { parentDir: join(scratch, 'work'), gitEnv, gitTimeoutMs: 20_000, sandbox });
    open.push(ws);
    return ws;
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'asa-ws-spec-'));
    chmodSync(scratch, 0o711); // the sandbox's user passes through to the workspaces
    sandbox = await createSandbox({ sandbox: 'bwrap', sandboxNetwork: false, workspaceDir: scratch, executableSearchPath: process.env.PATH ?? '' });
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
      expect(hostGit(ws.repoDir, 'rev-list', '--count', 'HEAD').trim()).toBe('1');
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
    await sandbox.handOver(join(ws.repoDir, 'new-dir')); // as if the test command had made it
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

  it('records its owner; the sandbox user owns the checkout, HOME and TMPDIR but not the root', async () => {
    const ws = await create();
    await ws.clone(parseRepoUrl(origin));
    const owner = JSON.parse(readFileSync(join(ws.root, 'owner.json'), 'utf8'));
    expect(owner).toMatchObject({ pid: process.pid });
    expect(owner.startTicks).toBeGreaterThan(0);
    const rootUid = process.getuid!();
    const sandboxUid = rootUid === 0 ? 65534 : rootUid;
    expect(statSync(ws.root).uid).toBe(rootUid);
    for (const d of [ws.repoDir, ws.homeDir, ws.tmpDir, join(ws.repoDir, 'src/math.js'), join(ws.repoDir, '.git/config')]) expect(statSync(d).uid, d).toBe(sandboxUid);
  });

  it('git on the checkout runs sandboxed: a filter planted in .git/config runs as the sandbox user, and sees nothing of the service', async () => {
    const ws = await create();
    await ws.clone(parseRepoUrl(origin));
    const marker = join(scratch, 'filter-ran-outside');
    // What a test command could leave behind for the next `git checkout` (reset before each attempt).
    writeFileSync(join(ws.repoDir, '.gitattributes'), '*.js filter=evil\n');
    const filterOut = join(ws.tmpDir, 'filter.txt');
    hostGit(ws.repoDir, 'config', 'filter.evil.smudge', `sh -c 'id -u > ${filterOut}; ls /proc | wc -l >> ${filterOut}; touch ${marker}; cat'`);
    writeFileSync(join(ws.repoDir, 'src/math.js'), 'changed');
    await ws.reset();
    expect(existsSync(marker)).toBe(false); // the filter could not write outside the workspace
    const [uid, procEntries] = readFileSync(filterOut, 'utf8').trim().split('\n');
    expect(Number(uid)).toBe(process.getuid!() === 0 ? 65534 : process.getuid!());
    expect(Number(procEntries)).toBeLessThan(100); // its own /proc, not the machine's
  });

  it('writes patch files without following a symlink planted under their name', async () => {
    const ws = await create();
    const target = join(scratch, 'must-stay.txt');
    writeFileSync(target, 'original');
    symlinkSync(target, join(ws.root, 'a1.patch'));
    await expect(ws.writeScratchFile('a1.patch', 'x')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(readFileSync(target, 'utf8')).toBe('original');
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
      expect(hostGit(ws.repoDir, 'status', '--porcelain').trim()).toBe('M src/math.js');
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
