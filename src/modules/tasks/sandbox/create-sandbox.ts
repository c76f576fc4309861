import { Logger } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { TasksConfig } from '../../../config/tasks.config';
import { runSandboxedCommand } from '../agent/sandboxed-command';
import { BwrapSandbox } from './bwrap-sandbox';
import { NoSandbox } from './no-sandbox';
import { PROBE_PREFIX, Sandbox, SANDBOX_GID, SANDBOX_UID } from './sandbox';
import { StartConfigError } from '../../../common/start-config-error';

/** The part of the tasks configuration the sandbox is built from. */
export type SandboxConfig = Pick<TasksConfig, 'sandbox' | 'sandboxNetwork' | 'workspaceDir' | 'executableSearchPath'>;

const OPT_OUT = 'or set TASK_SANDBOX=none to run test commands without isolation (then only admin API keys may submit tasks)';

/** The start stops with this: a message saying what to install or change, no stack trace needed. */
export class SandboxUnavailableError extends StartConfigError {}

/**
 * Builds the sandbox TASK_SANDBOX asks for. For bwrap, finds bubblewrap on PATH and runs one
 * command in a sandbox exactly as a task would (under TASK_WORKSPACE_DIR, as the same user), so a
 * missing binary, a kernel that refuses namespaces or a workspace folder the sandbox user cannot
 * reach stops the start with a message, instead of failing every task later.
 */
export async function createSandbox(config: SandboxConfig): Promise<Sandbox> {
  if (config.sandbox === 'none') {
    new Logger(NoSandbox.name).warn(
      'TASK_SANDBOX=none: test commands and git apply run WITHOUT isolation, as the service user, with its files, ' +
        'processes and network in reach; only admin API keys may submit tasks. Use TASK_SANDBOX=bwrap for untrusted repositories.',
    );
    return new NoSandbox();
  }
  const logger = new Logger(BwrapSandbox.name);
  const binary = findExecutable('bwrap', config.executableSearchPath);
  if (!binary) {
    throw new SandboxUnavailableError(
      `TASK_SANDBOX=bwrap (the default) needs bubblewrap, but no "bwrap" was found on PATH (${config.executableSearchPath || 'empty'}). ` +
        `Install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), ${OPT_OUT}.`,
    );
  }
  const version = await bwrapVersion(binary);
  const runAs = process.getuid?.() === 0 ? { uid: SANDBOX_UID, gid: SANDBOX_GID } : null;
  const sandbox = new BwrapSandbox({
    binary,
    network: config.sandboxNetwork,
    runAs,
    disableNestedUserns: version !== null && compareVersions(version, [0, 8, 0]) >= 0,
  });
  await probe(sandbox, binary, config.workspaceDir);
  logger.log(
    `test commands and git apply run in a bubblewrap sandbox (${binary} ${version?.join('.') ?? ''}; ` +
      `as uid ${runAs?.uid ?? process.getuid?.()}; network ${config.sandboxNetwork ? 'allowed (TASK_SANDBOX_NETWORK=true)' : 'off'})`,
  );
  return sandbox;
}

/** The first executable `name` in a PATH-like list of folders, or null. */
export function findExecutable(name: string, searchPath: string): string | null {
  for (const dir of searchPath.split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const file = join(dir, name);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // Not here.
    }
  }
  return null;
}

async function bwrapVersion(binary: string): Promise<number[] | null> {
  try {
    const { stdout } = await promisify(execFile)(binary, ['--version'], { timeout: 10_000, env: {} });
    const m = /(\d+)\.(\d+)\.(\d+)/.exec(stdout);
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
  } catch {
    return null;
  }
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/** One command in a workspace-like folder, as a task's test command runs; throws what went wrong. */
async function probe(sandbox: BwrapSandbox, binary: string, workspaceDir: string): Promise<void> {
  await mkdir(workspaceDir, { recursive: true });
  const root = await mkdtemp(join(workspaceDir, PROBE_PREFIX));
  try {
    const work = join(root, 'work');
    await mkdir(work);
    if (sandbox.uid !== null) await chmod(root, 0o711);
    await sandbox.handOver(work);
    const r = await runSandboxedCommand('echo sandbox-ok > probe.txt && cat probe.txt', {
      sandbox,
      mounts: { readOnly: [root], writable: [work] },
      cwd: work,
      env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
      timeoutMs: 15_000,
      killGraceMs: 500,
      maxOutputBytes: 8 * 1024,
    });
    if (r.passed && r.output.trim() === 'sandbox-ok') return;
    const said = r.output.trim() || (r.timedOut ? 'no answer within 15 s' : `exit ${r.exitCode ?? r.exitSignal}`);
    throw new SandboxUnavailableError(
      `TASK_SANDBOX=bwrap (the default): bubblewrap (${binary}) could not run a command in a sandbox: ${said}. ` +
        'It needs user namespaces: allow them (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu 24.04 also ' +
        'kernel.apparmor_restrict_unprivileged_userns=0; in a container, a seccomp/AppArmor profile that permits them). ' +
        (sandbox.uid !== null
          ? `The service runs as root, so commands run as uid ${sandbox.uid}: TASK_WORKSPACE_DIR (${workspaceDir}) and its parent folders must be searchable by it (chmod o+x). `
          : '') +
        `${OPT_OUT[0].toUpperCase()}${OPT_OUT.slice(1)}.`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
