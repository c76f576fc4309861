import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Kernel and device trees: never a repository, and a way into the service's own process (`/proc/self/cwd`). */
const SYSTEM_TREES = ['/proc', '/sys', '/dev'];

/** Prefix of every task workspace folder (Workspace.create). */
export const WORKSPACE_PREFIX = 'asa-task-';

/**
 * What of the service's own a local repo_url may not reach, for any key. `files` may be neither
 * named nor contained (the path may not be the working folder, the database file or an ancestor
 * of them); `trees` may not be entered at all (the git repository the service runs from).
 */
export interface ServicePaths {
  readonly files: readonly string[];
  readonly trees: readonly string[];
  /** Where task workspaces live: another task's `asa-task-*` folder is off limits. */
  readonly workspaceDir: string;
}

/** `p` is `root` or inside it. */
function isWithin(p: string, root: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest (a path that does not exist yet). */
export async function realpathLoose(p: string): Promise<string> {
  try {
    return await realpath(p);
  } catch {
    const parent = dirname(p);
    if (parent === p) return p;
    return join(await realpathLoose(parent), basename(p));
  }
}

function realpathLooseSync(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    if (parent === p) return p;
    return join(realpathLooseSync(parent), basename(p));
  }
}

/**
 * Why an absolute local path must not be cloned, or null. Checked on the path as written and on
 * its real path (symlinks and `/proc/self/...` magic links resolved in this process, which is
 * what git, started by this process, would see).
 */
export async function localPathProblem(path: string, service: ServicePaths): Promise<string | null> {
  const lexical = resolve(path);
  const real = await realpathLoose(lexical);
  for (const p of [lexical, real]) {
    const tree = SYSTEM_TREES.find((t) => isWithin(p, t));
    if (tree) return `repo_url: paths under ${tree} are never cloned (they lead into the service's own process or devices)`;
  }
  for (const f of service.files) {
    if (isWithin(f, real)) {
      return `repo_url: "${path}" resolves to ${real}, which is or contains the service's own files (its working folder or data); it cannot be cloned`;
    }
  }
  for (const t of service.trees) {
    if (isWithin(real, t)) {
      return `repo_url: "${path}" resolves to ${real}, inside the service's own repository ${t}; it cannot be cloned`;
    }
  }
  const rel = relative(service.workspaceDir, real);
  if (rel.startsWith(WORKSPACE_PREFIX) && !rel.startsWith('..')) {
    return `repo_url: "${path}" is inside a task workspace (TASK_WORKSPACE_DIR); another task's checkout cannot be cloned`;
  }
  return null;
}

/**
 * The git repository a folder belongs to: its work tree, its git folder and, for a linked work
 * tree (`.git` is a file), the shared git folder. Empty when the folder is in no repository.
 */
export function enclosingGitRepository(dir: string): string[] {
  let d = realpathLooseSync(dir);
  for (;;) {
    const dotGit = join(d, '.git');
    if (existsSync(dotGit)) {
      const found = [d];
      try {
        if (statSync(dotGit).isFile()) {
          const m = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
          if (m) {
            const gitDir = resolve(d, m[1].trim());
            found.push(realpathLooseSync(gitDir));
            const common = join(gitDir, 'commondir');
            if (existsSync(common)) found.push(realpathLooseSync(resolve(gitDir, readFileSync(common, 'utf8').trim())));
          }
        }
      } catch {
        // An unreadable .git file still marks the work tree, which is protected above.
      }
      return found;
    }
    const parent = dirname(d);
    if (parent === d || d === sep) return [];
    d = parent;
  }
}

/** The service's own paths for `localPathProblem`, from where it runs and what it stores. */
export function servicePaths(opts: { workingDir: string; dataFiles: readonly string[]; workspaceDir: string }): ServicePaths {
  return {
    files: [opts.workingDir, ...opts.dataFiles].map((f) => realpathLooseSync(resolve(f))),
    trees: enclosingGitRepository(opts.workingDir),
    workspaceDir: realpathLooseSync(opts.workspaceDir),
  };
}

/** Whether `dir` holds a git directory's own files (HEAD, objects/, refs/): a bare repository or a `.git` folder. */
async function isGitDir(dir: string): Promise<boolean> {
  const kinds = await Promise.all(['HEAD', 'objects', 'refs'].map((n) => stat(join(dir, n)).catch(() => null)));
  return kinds[0]?.isFile() === true && kinds[1]?.isDirectory() === true && kinds[2]?.isDirectory() === true;
}

/**
 * Why a local path cannot be cloned, or null: it does not exist, is not a folder, or is not a git
 * repository (a work tree with `.git`, or a bare repository), which is where git clone looks.
 * Checked at submit so the user gets a 400 now rather than a task that fails with clone_failed.
 */
export async function localRepositoryProblem(path: string): Promise<string | null> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => err);
  if (info instanceof Error) {
    if (info.code === 'ENOENT' || info.code === 'ENOTDIR') return `repo_url: "${path}" does not exist on the service's machine`;
    return `repo_url: "${path}" cannot be read by the service (${info.code ?? info.message})`;
  }
  if (!info.isDirectory()) return `repo_url: "${path}" is a file, not a git repository folder`;
  const dotGit = await stat(join(path, '.git')).catch(() => null);
  if (dotGit !== null || (await isGitDir(path))) return null;
  return `repo_url: "${path}" is a folder but not a git repository (no .git in it); run git init and commit its files, or name the repository's top folder`;
}
