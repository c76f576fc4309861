/** How a task's commands (its test command, git on its checkout) are confined. */
export type SandboxKind = 'bwrap' | 'none';

/** Injection token of the Sandbox the tasks module built from TASK_SANDBOX. */
export const TASK_SANDBOX = Symbol('TASK_SANDBOX');

/**
 * Unprivileged user the sandboxed commands run as when the service runs as root ("nobody" on
 * Debian): root inside the sandbox would be root outside it too.
 */
export const SANDBOX_UID = 65534;
export const SANDBOX_GID = 65534;

/** Folders the start-up probe makes under TASK_WORKSPACE_DIR (the start-up clean-up removes stale ones). */
export const PROBE_PREFIX = 'asa-sandbox-probe-';

/** The folders of the task a sandboxed command may see, each at its own path. */
export interface SandboxMounts {
  /** Visible, read-only (the workspace root: patch files, records). */
  readonly readOnly: readonly string[];
  /** Visible and writable: the only places the command can change. */
  readonly writable: readonly string[];
}

export interface SandboxRequest {
  /** Working folder of the command (inside one of the mounts). */
  readonly cwd: string;
  /** Complete environment of the command. */
  readonly env: Record<string, string>;
  readonly mounts: SandboxMounts;
}

/** How to start a confined command: a file and arguments for child_process.spawn / execFile. */
export interface SandboxLaunch {
  readonly file: string;
  readonly args: string[];
  readonly cwd: string;
  readonly env: Record<string, string>;
  /** Run as this user and group (only when the service runs as root). */
  readonly uid?: number;
  readonly gid?: number;
  /**
   * The process started is a supervisor of the command (bubblewrap), not the command: a graceful
   * stop signals the other members of its process group, because its own death ends the sandbox at once.
   */
  readonly supervised: boolean;
}

export interface Sandbox {
  readonly kind: SandboxKind;
  /** Whether commands may use the network. */
  readonly network: boolean;
  /** User id commands run as, outside the sandbox too; null: the service's own. */
  readonly uid: number | null;
  /** How to start `argv` confined to the request's folders. */
  launch(argv: readonly string[], req: SandboxRequest): SandboxLaunch;
  /**
   * Gives a folder tree to the sandbox's user so commands can write it (a no-op unless the
   * service runs as root and commands run as SANDBOX_UID).
   */
  handOver(path: string): Promise<void>;
}
