import { execFile } from 'node:child_process';
import { Sandbox, SandboxMounts } from '../sandbox/sandbox';

export interface GitOptions {
  readonly cwd?: string;
  /** Complete environment of git (nothing else is inherited). */
  readonly env: Record<string, string>;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Text written to git's stdin. */
  readonly input?: string;
  /** Runs git in this sandbox, seeing only these folders (cwd must be one of them). */
  readonly sandbox?: { readonly sandbox: Sandbox; readonly mounts: SandboxMounts };
}

export class GitCommandError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    readonly exitCode: number | null,
    readonly timedOut: boolean,
    readonly aborted: boolean,
  ) {
    const what = timedOut ? 'timed out' : aborted ? 'was stopped' : `failed (exit ${exitCode ?? 'signal'})`;
    super(`git ${subcommandOf(args)} ${what}: ${stderr.trim() || '(no output)'}`);
  }
}

/** The git subcommand in an argument list that may start with `-c name=value` pairs. */
function subcommandOf(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c') i++;
    else if (!args[i].startsWith('-')) return args[i];
  }
  return '';
}

/**
 * Runs git with an argument array (never through a shell), a timeout and an abort signal,
 * optionally in a sandbox. Resolves with stdout; rejects with GitCommandError carrying git's stderr.
 */
export function runGit(args: readonly string[], opts: GitOptions): Promise<string> {
  const launch = opts.sandbox
    ? opts.sandbox.sandbox.launch(['git', ...args], { cwd: opts.cwd ?? '/', env: opts.env, mounts: opts.sandbox.mounts })
    : { file: 'git', args: [...args], cwd: opts.cwd, env: opts.env, uid: undefined, gid: undefined };
  return new Promise((resolve, reject) => {
    const child = execFile(
      launch.file,
      launch.args,
      {
        cwd: launch.cwd,
        env: launch.env,
        ...(launch.uid !== undefined ? { uid: launch.uid, gid: launch.gid } : {}),
        timeout: opts.timeoutMs,
        killSignal: 'SIGKILL',
        signal: opts.signal,
        maxBuffer: 32 * 1024 * 1024,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string };
        const aborted = e.name === 'AbortError' || opts.signal?.aborted === true;
        const timedOut = !aborted && e.killed === true && e.signal === 'SIGKILL';
        const exitCode = typeof e.code === 'number' ? e.code : null;
        reject(new GitCommandError(args, stderr || e.message, exitCode, timedOut, aborted));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}
