import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { chmod, lchown, opendir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Sandbox, SandboxLaunch, SandboxRequest } from './sandbox';

/** Top-level system folders bound read-only (or recreated as the symlinks they are, on merged-/usr systems). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/**
 * What of /etc a command sees: name lookup, TLS roots, time zone, locale, the dynamic linker,
 * Debian's alternatives (e.g. /usr/bin/awk points there) and language runtimes' own settings.
 * An allowlist, so files a deployer keeps there (npmrc and pip.conf with index tokens, the
 * service's own settings, database and SSH configuration) stay invisible.
 */
const ETC_ALLOWED =
  /^(alternatives|ca-certificates|ca-certificates\.conf|crypto-policies|debian_version|fonts|gai\.conf|gitconfig|group|host\.conf|hostname|hosts|inputrc|java-[\w.-]+|ld\.so\.cache|ld\.so\.conf|ld\.so\.conf\.d|locale\.alias|locale\.conf|localtime|lsb-release|magic|magic\.mime|mime\.types|nsswitch\.conf|os-release|passwd|perl|pki|protocols|python[\d.]*|resolv\.conf|services|shells|ssl|terminfo|timezone|xml)$/;

export interface BwrapSandboxOptions {
  /** Absolute path of the bwrap binary. */
  readonly binary: string;
  readonly network: boolean;
  /** Run bwrap as this user and group (the service runs as root); null: as the service's user. */
  readonly runAs: { uid: number; gid: number } | null;
  /** bwrap 0.8+: forbid user namespaces inside the sandbox (less kernel surface for an escape). */
  readonly disableNestedUserns: boolean;
  /** The node binary, made visible when it lives outside the system folders (nvm, /opt). */
  readonly nodeExecPath?: string;
}

/**
 * Commands in a bubblewrap sandbox: new user, PID, IPC, UTS and cgroup namespaces (and network,
 * unless allowed), a fresh /proc showing only the sandbox's processes, a minimal /dev, a private
 * /tmp, the system folders read-only, and of everything else only the task's folders. bubblewrap
 * kills the whole sandbox when its command exits, when bwrap dies, and when the service dies
 * (--die-with-parent): nothing the command starts can outlive it.
 */
export class BwrapSandbox implements Sandbox {
  readonly kind = 'bwrap';
  readonly network: boolean;
  readonly uid: number | null;
  /** The arguments every launch shares (namespaces, system folders). */
  readonly baseArgs: readonly string[];

  constructor(private readonly opts: BwrapSandboxOptions) {
    this.network = opts.network;
    this.uid = opts.runAs?.uid ?? null;
    this.baseArgs = [
      '--unshare-user',
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      ...(opts.network ? [] : ['--unshare-net']),
      ...(opts.disableNestedUserns ? ['--disable-userns'] : []),
      '--die-with-parent',
      '--hostname',
      'sandbox',
      ...systemMounts(opts.nodeExecPath ?? process.execPath),
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--tmpfs',
      '/tmp',
    ];
  }

  launch(argv: readonly string[], req: SandboxRequest): SandboxLaunch {
    const args = [...this.baseArgs];
    // Same paths inside as outside, so paths in output and in patch files mean the same thing.
    for (const p of req.mounts.readOnly) args.push('--ro-bind', p, p);
    for (const p of req.mounts.writable) args.push('--bind', p, p);
    // Last, once every mount point exists: the sandbox's own root is read-only too.
    args.push('--remount-ro', '/', '--chdir', req.cwd, '--', ...argv);
    return {
      file: this.opts.binary,
      args,
      // bwrap's own working folder does not matter (--chdir); "/" is reachable by any user.
      cwd: '/',
      // bwrap passes its environment on unchanged: this is all the command (and /proc/1/environ) shows.
      env: req.env,
      ...(this.opts.runAs ? { uid: this.opts.runAs.uid, gid: this.opts.runAs.gid } : {}),
      supervised: true,
    };
  }

  async handOver(path: string): Promise<void> {
    const owner = this.opts.runAs;
    if (!owner) return;
    await chownTree(path, owner.uid, owner.gid);
    // Only the sandbox's user (and root) may enter; other local users see nothing of the task.
    await chmod(path, 0o700);
  }
}

/** --ro-bind / --symlink arguments for the system folders, the allowed /etc entries and node. */
export function systemMounts(nodeExecPath: string): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (st.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  let etc: string[] = [];
  try {
    etc = readdirSync('/etc').filter((name) => ETC_ALLOWED.test(name));
  } catch {
    // No /etc to share: the command gets none.
  }
  // --ro-bind-try: a dangling symlink (resolv.conf into an absent /run) is skipped, not fatal.
  for (const name of etc.sort()) args.push('--ro-bind-try', join('/etc', name), join('/etc', name));

  const nodeDir = dirname(nodeExecPath);
  if (!isUnderSystemDirs(nodeDir)) {
    args.push('--ro-bind', nodeDir, nodeDir);
    // npm and npx of that node (bin/npm links to ../lib/node_modules/npm).
    const modules = join(dirname(nodeDir), 'lib', 'node_modules');
    if (existsSync(modules)) args.push('--ro-bind', modules, modules);
  }
  return args;
}

function isUnderSystemDirs(path: string): boolean {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // Checked as given.
  }
  return SYSTEM_DIRS.some((d) => real === d || real.startsWith(`${d}/`));
}

/** chown -R without following symlinks (a symlink in a repository must not redirect the chown). */
async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  await lchown(root, uid, gid);
  const st = lstatSync(root);
  if (!st.isDirectory()) return;
  const dir = await opendir(root);
  for await (const entry of dir) {
    const path = join(root, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid, gid);
    else await lchown(path, uid, gid);
  }
}
