import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** What /proc/<pid>/stat and status tell about a process (Linux). */
export interface ProcessInfo {
  readonly pid: number;
  readonly pgid: number;
  readonly sid: number;
  /** Start time in clock ticks after boot: with the pid, it names one process (pids are reused). */
  readonly startTicks: number;
  /** R, S, D, Z (zombie: ended, waiting to be reaped), … */
  readonly state: string;
}

/** The process with this pid, or null when there is none (or /proc cannot tell). */
export function readProcess(pid: number): ProcessInfo | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (2nd field) may contain spaces and parentheses: split after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: f[0], pgid: Number(f[2]), sid: Number(f[3]), startTicks: Number(f[19]) };
  } catch {
    return null;
  }
}

/** Real user id of a process, or null. */
export function processUid(pid: number): number | null {
  try {
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return uid === undefined ? null : Number(uid);
  } catch {
    return null;
  }
}

/** Every process visible in /proc. */
export function listProcesses(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProcess(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/**
 * Names one process across pid reuse, reboots and containers: a pid only means something on the
 * same host, in the same boot and the same PID namespace, with the same start time.
 */
export interface ProcessIdentity {
  readonly host: string;
  readonly bootId: string;
  readonly pidNamespace: string;
  readonly pid: number;
  readonly startTicks: number;
}

export function identityOf(pid: number): ProcessIdentity | null {
  const p = readProcess(pid);
  if (!p) return null;
  return { host: hostname(), bootId: bootId(), pidNamespace: pidNamespace(), pid, startTicks: p.startTicks };
}

/**
 * alive: the process still runs; dead: it certainly does not (ended, or the machine rebooted);
 * unknown: it belongs to another host or PID namespace (another replica's container), which
 * this process cannot look into.
 */
export function identityState(id: ProcessIdentity): 'alive' | 'dead' | 'unknown' {
  if (id.host !== hostname() || id.pidNamespace !== pidNamespace()) return 'unknown';
  if (id.bootId !== bootId()) return 'dead';
  const p = readProcess(id.pid);
  return p && p.startTicks === id.startTicks ? 'alive' : 'dead';
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function pidNamespace(): string {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return 'unknown';
  }
}
