import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ParsedRepoUrl, RepoUrlScheme } from '../repo-url';
import { runGit } from './git';

/** git transport (`protocol.<name>.allow`) used by each kind of repo_url. */
const GIT_PROTOCOL: Record<RepoUrlScheme, string> = {
  https: 'https',
  http: 'http',
  file: 'file',
  local: 'file',
  ssh: 'ssh',
  git: 'git',
};

/**
 * Settings that keep git from running anything the repository (or a test command that edited
 * `.git/`) could have put in place: no hooks, no fsmonitor command.
 */
const SAFE_GIT_CONFIG = ['-c', 'core.hooksPath=/dev/null', '-c', 'core.fsmonitor=false'];

/**
 * Arguments of the shallow clone. Every transport is denied except the one the address uses;
 * `--` ends the options so the address can never be read as one. A local path becomes a
 * `file://` URL because git ignores `--depth` for plain paths.
 */
export function cloneArgs(repo: ParsedRepoUrl, dest: string, extraConfig: readonly string[] = []): string[] {
  const source = repo.scheme === 'local' ? pathToFileURL(repo.url).href : repo.url;
  return [
    '-c',
    'protocol.allow=never',
    '-c',
    `protocol.${GIT_PROTOCOL[repo.scheme]}.allow=always`,
    ...SAFE_GIT_CONFIG,
    ...extraConfig,
    'clone',
    '--depth',
    '1',
    '--no-tags',
    '--quiet',
    '--',
    source,
    dest,
  ];
}

export interface WorkspaceOptions {
  /** Folder under which the task's temporary folder is made. */
  readonly parentDir: string;
  /** Environment git runs with (the sandbox passthrough, no secrets). */
  readonly gitEnv: Record<string, string>;
  readonly gitTimeoutMs: number;
}

/**
 * A task's temporary folder: `repo/` (the checkout), `home/` and `tmp/` (HOME and TMPDIR of the
 * test command) and the patch files. `dispose()` removes all of it.
 */
export class Workspace {
  readonly repoDir: string;
  readonly homeDir: string;
  readonly tmpDir: string;
  private disposed = false;

  private constructor(
    readonly root: string,
    private readonly opts: WorkspaceOptions,
  ) {
    this.repoDir = join(root, 'repo');
    this.homeDir = join(root, 'home');
    this.tmpDir = join(root, 'tmp');
  }

  static async create(taskId: string, opts: WorkspaceOptions): Promise<Workspace> {
    await mkdir(opts.parentDir, { recursive: true });
    const safeId = taskId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 40) || 'task';
    const root = await mkdtemp(join(opts.parentDir, `asa-task-${safeId}-`));
    const ws = new Workspace(root, opts);
    await mkdir(ws.homeDir);
    await mkdir(ws.tmpDir);
    return ws;
  }

  /** `extraConfig`: `-c name=value` pairs from RepoSourcePolicy.prepareClone (address pins, no redirects). */
  async clone(repo: ParsedRepoUrl, signal?: AbortSignal, extraConfig: readonly string[] = []): Promise<void> {
    await runGit(cloneArgs(repo, this.repoDir, extraConfig), { env: this.gitEnv(), timeoutMs: this.opts.gitTimeoutMs, signal });
  }

  /** Tracked files of the checkout (so .gitignore'd build output and dependencies are left out). */
  async trackedFiles(signal?: AbortSignal): Promise<string[]> {
    const out = await this.git(['ls-files', '-z'], signal);
    return out.split('\0').filter(Boolean);
  }

  /** Puts the checkout back to the cloned commit: every attempt starts from the original code. */
  async reset(signal?: AbortSignal): Promise<void> {
    await this.git(['checkout', '--', '.'], signal);
    await this.git(['clean', '-fd', '--quiet'], signal);
  }

  /** Writes a file outside the checkout (patches), so it never shows up in the repository. */
  async writeScratchFile(name: string, content: string): Promise<string> {
    const path = join(this.root, name);
    await writeFile(path, content);
    return path;
  }

  git(args: readonly string[], signal?: AbortSignal): Promise<string> {
    return runGit([...SAFE_GIT_CONFIG, ...args], {
      cwd: this.repoDir,
      env: this.gitEnv(),
      timeoutMs: this.opts.gitTimeoutMs,
      signal,
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await rm(this.root, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  }

  private gitEnv(): Record<string, string> {
    // The service's HOME, so a deployer's git settings (credential helper, proxy) apply to clone.
    // No LFS downloads: their address comes from the repository's .lfsconfig, which nobody checked.
    return { ...this.opts.gitEnv, HOME: homedir(), GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', GIT_LFS_SKIP_SMUDGE: '1' };
  }
}
