import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidsRunning } from '../../../../test/support/processes';
import { identityOf } from '../sandbox/proc';
import { OWNER_FILE, PROCESS_GROUP_FILE, ProcessGroupRecord, WorkspaceOwnerRecord } from './workspace';
import { reapOrphanWorkspaces } from './workspace-reaper';

/** Real folders and real processes: what a crashed service leaves behind, and what a live one owns. */
describe('reapOrphanWorkspaces', () => {
  let parent: string;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'asa-reaper-'));
  });
  afterEach(() => {
    for (const c of children.splice(0)) {
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(parent, { recursive: true, force: true });
  });

  const workspace = (name: string, owner: WorkspaceOwnerRecord | null, group?: ProcessGroupRecord) => {
    const root = join(parent, `asa-task-${name}`);
    mkdirSync(join(root, 'repo'), { recursive: true });
    if (owner) writeFileSync(join(root, OWNER_FILE), JSON.stringify(owner));
    if (group) writeFileSync(join(root, PROCESS_GROUP_FILE), JSON.stringify(group));
    return root;
  };
  /** A process that has ended, with the identity it had while it ran. */
  const deadProcess = async () => {
    const child = spawn('sleep', ['30']);
    const id = identityOf(child.pid!)!;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    return id;
  };
  /** A detached shell (own process group and session, as a test command runs) with two sleeps. */
  const startGroup = async (a: string, b: string) => {
    const child = spawn('/bin/sh', ['-c', `sleep ${a} & sleep ${b}`], { detached: true, stdio: 'ignore' });
    children.push(child);
    await vi.waitFor(() => expect(pidsRunning('sleep', b)).toHaveLength(1), { timeout: 5_000 });
    return { pgid: child.pid!, leaderStartTicks: identityOf(child.pid!)!.startTicks, uid: process.getuid!() };
  };

  it('removes a workspace whose owner died, keeps one whose owner lives', async () => {
    const live = workspace('live', identityOf(process.pid));
    const dead = workspace('dead', await deadProcess());
    const r = await reapOrphanWorkspaces(parent);
    expect(r.removed).toEqual([dead]);
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
  });

  it('a reused pid is not a live owner: the start time must match too', async () => {
    const me = identityOf(process.pid)!;
    const reused = workspace('reused', { ...me, startTicks: me.startTicks - 1 });
    await reapOrphanWorkspaces(parent);
    expect(existsSync(reused)).toBe(false);
  });

  it('leaves alone a workspace of another host or PID namespace (another replica sharing the folder)', async () => {
    const dead = await deadProcess();
    const otherHost = workspace('other-host', { ...dead, host: 'replica-2' });
    const otherNs = workspace('other-ns', { ...dead, pidNamespace: 'pid:[1]' });
    const r = await reapOrphanWorkspaces(parent);
    expect(r.removed).toEqual([]);
    expect(existsSync(otherHost) && existsSync(otherNs)).toBe(true);
  });

  it('kills the recorded test command group of an orphan workspace', async () => {
    const group = await startGroup('747471', '747472');
    const ws = workspace('crashed', await deadProcess(), group);
    const r = await reapOrphanWorkspaces(parent);
    expect(r.killed.length).toBeGreaterThanOrEqual(2);
    await vi.waitFor(() => expect([...pidsRunning('sleep', '747471'), ...pidsRunning('sleep', '747472')]).toEqual([]), { timeout: 5_000 });
    expect(existsSync(ws)).toBe(false);
  });

  it('never kills a group whose leader pid now names another process (pid reuse), nor a live owner\'s group', async () => {
    const group = await startGroup('757571', '757572');
    workspace('reused-group', await deadProcess(), { ...group, leaderStartTicks: group.leaderStartTicks + 1 });
    const otherUser = await startGroup('757573', '757574');
    workspace('other-user', await deadProcess(), { ...otherUser, uid: otherUser.uid + 1 });
    const liveGroup = await startGroup('757575', '757576');
    const live = workspace('live-owner', identityOf(process.pid), liveGroup);
    const r = await reapOrphanWorkspaces(parent);
    expect(r.killed).toEqual([]);
    for (const n of ['757571', '757572', '757573', '757574', '757575', '757576']) expect(pidsRunning('sleep', n), n).toHaveLength(1);
    expect(r.removed).toHaveLength(2);
    expect(existsSync(live)).toBe(true);
  });

  it('a workspace without an owner record (older versions) is removed only once it is an hour old', async () => {
    const fresh = workspace('fresh', null);
    const old = workspace('old', null);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(old, twoHoursAgo, twoHoursAgo);
    await reapOrphanWorkspaces(parent);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(old)).toBe(false);
  });

  it('ignores other folders and a missing parent folder', async () => {
    mkdirSync(join(parent, 'not-a-workspace'));
    expect((await reapOrphanWorkspaces(parent)).removed).toEqual([]);
    expect(existsSync(join(parent, 'not-a-workspace'))).toBe(true);
    expect(await reapOrphanWorkspaces(join(parent, 'missing'))).toEqual({ removed: [], killed: [], kept: [] });
  });
});
