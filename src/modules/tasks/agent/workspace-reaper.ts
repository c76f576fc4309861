import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tasksConfig } from '../../../config/tasks.config';
import { identityState, listProcesses, processUid, readProcess } from '../sandbox/proc';
import { PROBE_PREFIX } from '../sandbox/sandbox';
import { OWNER_FILE, PROCESS_GROUP_FILE, ProcessGroupRecord, WORKSPACE_PREFIX, WorkspaceOwnerRecord } from './workspace';

/**
 * A workspace without an owner record was made by a version before records, or is being made
 * this instant by another process: only one this old is taken for an orphan.
 */
export const UNOWNED_WORKSPACE_MAX_AGE_MS = 60 * 60_000;

export interface ReapResult {
  /** Workspaces removed (their owner is dead). */
  readonly removed: string[];
  /** Processes of recorded test commands killed. */
  readonly killed: number[];
  /** Workspaces left alone: owned by a live process, or by one this process cannot judge (another host or container). */
  readonly kept: string[];
}

/**
 * Clean-up after a crash: for each workspace under `parentDir` whose owner process is dead, kill
 * what is left of its recorded test command and remove the folder. A pid is only trusted together
 * with its start time (pids are reused), so no unrelated process is ever signalled.
 */
export async function reapOrphanWorkspaces(parentDir: string, now = Date.now()): Promise<ReapResult> {
  const result = { removed: [] as string[], killed: [] as number[], kept: [] as string[] };
  let names: string[];
  try {
    names = readdirSync(parentDir);
  } catch {
    return result; // No folder yet: nothing was left.
  }
  for (const name of names) {
    if (!name.startsWith(WORKSPACE_PREFIX) && !name.startsWith(PROBE_PREFIX)) continue;
    const root = join(parentDir, name);
    let mtimeMs: number;
    try {
      const st = lstatSync(root);
      if (!st.isDirectory()) continue;
      mtimeMs = st.mtimeMs;
    } catch {
      continue;
    }
    const owner = readJson<WorkspaceOwnerRecord>(join(root, OWNER_FILE));
    const orphan = owner ? identityState(owner) === 'dead' : now - mtimeMs > UNOWNED_WORKSPACE_MAX_AGE_MS;
    if (!orphan) {
      result.kept.push(root);
      continue;
    }
    const group = readJson<ProcessGroupRecord>(join(root, PROCESS_GROUP_FILE));
    if (group) result.killed.push(...killRecordedGroup(group));
    await rm(root, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
    result.removed.push(root);
  }
  return result;
}

/**
 * Kills the processes still in a recorded test command's group. Its leader made the group a
 * session of its own (spawned detached), so a member is a process of that group and session,
 * of the recorded user, started no earlier than the recorded leader. If a process now holds the
 * leader's pid with another start time, the pid was reused: the group is not ours, nothing is killed.
 */
export function killRecordedGroup(group: ProcessGroupRecord): number[] {
  const { pgid, leaderStartTicks, uid } = group;
  if (!Number.isInteger(pgid) || pgid <= 1 || pgid === process.pid || !Number.isFinite(leaderStartTicks)) return [];
  const leader = readProcess(pgid);
  if (leader && leader.startTicks !== leaderStartTicks) return [];
  const killed: number[] = [];
  for (const p of listProcesses()) {
    if (p.pgid !== pgid || p.sid !== pgid || p.startTicks < leaderStartTicks || p.pid === process.pid) continue;
    if (p.state === 'Z' || processUid(p.pid) !== uid) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
      killed.push(p.pid);
    } catch {
      // Ended in the meantime.
    }
  }
  return killed;
}

function readJson<T>(path: string): T | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

/** Runs the clean-up once at start, before any worker takes a task. */
@Injectable()
export class WorkspaceReaper implements OnModuleInit {
  private readonly logger = new Logger(WorkspaceReaper.name);

  constructor(@Inject(tasksConfig.KEY) private readonly config: ConfigType<typeof tasksConfig>) {}

  async onModuleInit(): Promise<void> {
    try {
      const r = await reapOrphanWorkspaces(this.config.workspaceDir);
      if (r.removed.length > 0) {
        this.logger.warn(
          `removed ${r.removed.length} workspace(s) left by a stopped process under ${this.config.workspaceDir}` +
            (r.killed.length > 0 ? `; killed ${r.killed.length} leftover test process(es)` : ''),
        );
      }
    } catch (err) {
      // Leftovers waste disk; they must not stop the service from starting.
      this.logger.error(`clean-up of old workspaces failed: ${(err as Error).message}`);
    }
  }
}
