import { execFile } from 'node:child_process';
import { cp } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Identity and settings of the commits made here, so the user's git configuration plays no part. */
const GIT_SETTINGS = [
  '-c', 'user.name=asa-backend demo',
  '-c', 'user.email=demo@asa-backend.invalid',
  '-c', 'commit.gpgsign=false',
  '-c', 'core.hooksPath=/dev/null',
  '-c', 'init.defaultBranch=main',
];

/** Makes `dir` a git repository whose single commit holds every file in it. */
export async function initRepo(dir: string, message = 'Initial commit'): Promise<void> {
  const git = (...args: string[]) => execFileAsync('git', [...GIT_SETTINGS, ...args], { cwd: dir });
  await git('init', '--quiet');
  await git('add', '--all');
  await git('commit', '--quiet', '--no-verify', '-m', message);
}

/** Copies a folder of plain files to `dest` and makes it a git repository. */
export async function copyAsRepo(source: string, dest: string): Promise<void> {
  await cp(source, dest, { recursive: true });
  await initRepo(dest);
}
