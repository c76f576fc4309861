import { readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { UsageJournalLockedException } from '../usage.exceptions';

export const LOCK_FILE = 'journal.lock';

/** Who holds a journal folder. `startTicks` (Linux) tells a live owner from a new process that reused its pid. */
export interface LockOwner {
  pid: number;
  host: string;
  startedAtMs: number;
  startTicks: string | null;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null off Linux. */
export function processStartTicks(pid: number | 'self'): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export function currentOwner(): LockOwner {
  return { pid: process.pid, host: hostname(), startedAtMs: Math.round(Date.now() - process.uptime() * 1000), startTicks: processStartTicks('self') };
}

/** True when the process that wrote `owner` still runs (on this host). */
export function ownerAlive(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return true; // cannot be checked from here: assume it lives
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (owner.startTicks === null) return true;
  const ticks = processStartTicks(owner.pid);
  return ticks === null || ticks === owner.startTicks;
}

/**
 * One process per journal folder: two writers would each replay (and remove) the other's
 * segments. The lock is a file created exclusively, naming its owner; a lock whose owner has
 * died (a crash or kill -9 leaves it behind) is taken over.
 */
export class JournalLock {
  private constructor(private readonly path: string) {}

  static async acquire(dir: string, owner: LockOwner = currentOwner()): Promise<JournalLock> {
    const path = join(dir, LOCK_FILE);
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fh = await open(path, 'wx', 0o644);
        try {
          await fh.writeFile(JSON.stringify(owner) + '\n');
          await fh.sync();
        } finally {
          await fh.close();
        }
        return new JournalLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const text = await readFile(path, 'utf8').catch(() => null);
      if (text === null) continue; // removed meanwhile: try again
      const held = parseOwner(text);
      if (held && ownerAlive(held)) {
        throw new UsageJournalLockedException(
          `usage journal folder ${dir} is in use by process ${held.pid}${held.host !== owner.host ? ` on ${held.host}` : ''} ` +
            `(started ${new Date(held.startedAtMs).toISOString()}); two processes cannot share one journal: ` +
            'stop the other process. Several processes need PostgreSQL (DATABASE_URL), each with its own USAGE_JOURNAL_DIR: ' +
            'a SQLite database file serves one process',
        );
      }
      // The owner is dead (or the file is unreadable): check it is still the same file, then take over.
      if ((await readFile(path, 'utf8').catch(() => null)) === text) await unlink(path).catch(() => undefined);
    }
    throw new UsageJournalLockedException(`could not take the lock of usage journal folder ${dir}: it keeps changing hands`);
  }

  async release(): Promise<void> {
    await unlink(this.path).catch(() => undefined);
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid !== 'number' || typeof v.host !== 'string') return null;
    return { pid: v.pid, host: v.host, startedAtMs: Number(v.startedAtMs) || 0, startTicks: typeof v.startTicks === 'string' ? v.startTicks : null };
  } catch {
    return null;
  }
}
