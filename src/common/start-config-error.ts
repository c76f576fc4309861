import { readFileSync } from 'node:fs';

/**
 * Something the deployer must fix stops the start (a bad keys, gateway, pricing or plugins file,
 * a missing sandbox): the message names the file or variable and the problem on one line, and the
 * service prints only that (main.ts), never a stack trace that would bury it.
 */
export class StartConfigError extends Error {
  constructor(message?: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Why a file the deployer named cannot be read, in words (the errno code kept for searching):
 * Node's own message ("EISDIR: illegal operation on a directory, read") names neither the file nor
 * what to do.
 */
export function unreadableFile(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'EISDIR') return 'is a directory, not a file (EISDIR)';
  if (code === 'ENOENT') return 'does not exist (ENOENT)';
  if (code === 'EACCES' || code === 'EPERM') return `cannot be read: permission denied (${code})`;
  return `cannot be read (${code ?? (err instanceof Error ? err.message : String(err))})`;
}

/** The text of a file the deployer named, or `fail` called with why it cannot be read. */
export function readConfigFile(path: string, fail: (problem: string) => Error): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw fail(unreadableFile(err));
  }
}
