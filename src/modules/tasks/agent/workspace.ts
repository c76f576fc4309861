import { constants, unlinkSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ParsedRepoUrl, RepoUrlScheme } from '../repo-url';
import { identityOf } from '../sandbox/proc';
import { Sandbox, SandboxMounts } from '../sandbox/sandbox';
import { runGit } from './git';

/** Prefix of every workspace folder under TASK_WORKSPACE_DIR (the start-up clean-up looks for it). */
export const WORKSPACE_PREFIX = 'asa-task-';
/** In the workspace root: which process owns the workspace (see WorkspaceOwnerRecord). */
export const OWNER_FILE = 'owner.json';
/** In the workspace root, while a test command runs: its process group (see ProcessGroupRecord). */
export const PROCESS_GROUP_FILE = 'process-group.json';

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
  /** Where git runs on the checkout (everything but the clone, which needs the network). */
  readonly sandbox: Sandbox;
}

/** `owner.json`: the service process that made the workspace; when it is dead, the workspace is an orphan. */
export type WorkspaceOwnerRecord = NonNullable<ReturnType<typeof identityOf>>;

/** `process-group.json`: the test command running now (its group leader's start time and user guard against pid reuse). */
export interface ProcessGroupRecord {
  readonly pgid: number;
  readonly leaderStartTicks: number;
  readonly uid: number;
}

/**
 * A task's temporary folder: `repo/` (the checkout), `home/` and `tmp/` (HOME and TMPDIR of the
 * test command), the patch files and the owner records. Sandboxed commands see the root
 * read-only and only `repo/`, `home/` and `tmp/` writable. `dispose()` removes all of it.
 */
export class Workspace {
  readonly repoDir: string;
  readonly homeDir: string;
  readonly tmpDir: string;
  /** What a sandboxed command of this task sees of the machine's folders. */
  readonly mounts: SandboxMounts;
  private disposed = false;

  private constructor(
    readonly root: string,
    private readonly opts: WorkspaceOptions,
  ) {
    this.repoDir = join(root, 'repo');
    this.homeDir = join(root, 'home');
    this.tmpDir = join(root, 'tmp');
    this.mounts = { readOnly: [root], writable: [this.repoDir, this.homeDir, this.tmpDir] };
  }

  static async create(taskId: string, opts: WorkspaceOptions): Promise<Workspace> {
    await mkdir(opts.parentDir, { recursive: true });
    const safeId = taskId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 40) || 'task';
    const root = await mkdtemp(join(opts.parentDir, `${WORKSPACE_PREFIX}${safeId}-`));
    // First, so a crash at any later point leaves a workspace the next start can tell is orphaned.
    writeFileSync(join(root, OWNER_FILE), JSON.stringify(identityOf(process.pid)), { mode: 0o644 });
    const ws = new Workspace(root, opts);
    // The sandbox's user (when not the service's) must get through the root to its folders, but
    // not write it: the records and patch files there are the service's.
    if (opts.sandbox.uid !== null) await chmod(root, 0o711);
    await mkdir(ws.homeDir);
    await mkdir(ws.tmpDir);
    await opts.sandbox.handOver(ws.homeDir);
    await opts.sandbox.handOver(ws.tmpDir);
    return ws;
  }

  /** `extraConfig`: `-c name=value` pairs from RepoSourcePolicy.prepareClone (address pins, no redirects). */
  async clone(repo: ParsedRepoUrl, signal?: AbortSignal, extraConfig: readonly string[] = []): Promise<void> {
    await runGit(cloneArgs(repo, this.repoDir, extraConfig), { env: this.cloneEnv(), timeoutMs: this.opts.gitTimeoutMs, signal });
    await this.opts.sandbox.handOver(this.repoDir);
  }

  /** Notes the running test command's process group, for the start-up clean-up after a crash. */
  recordProcessGroup(pgid: number): void {
    const leader = identityOf(pgid);
    if (!leader) return;
    const record: ProcessGroupRecord = { pgid, leaderStartTicks: leader.startTicks, uid: this.opts.sandbox.uid ?? process.getuid?.() ?? -1 };
    writeFileSync(join(this.root, PROCESS_GROUP_FILE), JSON.stringify(record));
  }

  clearProcessGroup(): void {
    try {
      unlinkSync(join(this.root, PROCESS_GROUP_FILE));
    } catch {
      // Not recorded (the command did not start).
    }
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

  /**
   * Writes a file outside the checkout (patches), so it never shows up in the repository.
   * O_NOFOLLOW: never through a symlink someone planted under that name.
   */
  async writeScratchFile(name: string, content: string): Promise<string> {
    const path = join(this.root, name);
    const file = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
    try {
      await file.writeFile(content);
    } finally {
      await file.close();
    }
    return path;
  }

  /**
   * git on the checkout, in the sandbox: after the first test run the repository (its .git/config,
   * attributes and filters included) is whatever the untrusted command left, so git must not run
   * on it with the service's rights.
   */
  git(args: readonly string[], signal?: AbortSignal): Promise<string> {
    return runGit([...SAFE_GIT_CONFIG, ...args], {
      cwd: this.repoDir,
      env: { ...this.opts.gitEnv, HOME: this.homeDir, GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never' },
      timeoutMs: this.opts.gitTimeoutMs,
      signal,
      sandbox: { sandbox: this.opts.sandbox, mounts: this.mounts },
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await rm(this.root, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  }

  private cloneEnv(): Record<string, string> {
    // The service's HOME, so a deployer's git settings (credential helper, proxy) apply to clone.
    // No LFS downloads: their address comes from the repository's .lfsconfig, which nobody checked.
    return { ...this.opts.gitEnv, HOME: homedir(), GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', GIT_LFS_SKIP_SMUDGE: '1' };
  }
}
