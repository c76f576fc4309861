import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { usageRecord } from '../../../../test/support/usage-records';
import type { AppendDurability } from './group-commit-file';
import { CallStart, decodeSegment, encodeEntry } from './journal-entry';
import { LOCK_FILE } from './journal-lock';
import { interruptedRecord } from './usage-journal-replayer.service';
import { UsageJournal } from './usage-journal.service';

const segmentsIn = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('segment-')).sort();

function callStart(over: Partial<CallStart> = {}): CallStart {
  return {
    id: randomUUID(),
    createdAtMs: Date.now(),
    taskId: 'task-1',
    userId: 'user-1',
    provider: 'openai',
    operation: 'chat',
    requestedModel: 'gpt-4o-mini',
    streamed: false,
    traceId: null,
    promptTokens: 1234,
    ...over,
  };
}

/** Leaves a lock as a process that has since exited would (kill -9 leaves it behind). */
function lockOfDeadProcess(dir: string): void {
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), startedAtMs: 1, startTicks: '1' }));
}

describe('UsageJournal', () => {
  let dir: string;
  const journals: UsageJournal[] = [];
  const open = async (d = dir, sync: AppendDurability = 'disk') => {
    const j = new UsageJournal({ journal: { enabled: true, dir: d, sync } });
    await j.open();
    journals.push(j);
    return j;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-journal-'));
  });
  afterEach(async () => {
    for (const j of journals.splice(0)) await j.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes a start durable before its promise resolves, and calls starting together share one write and fdatasync', async () => {
    const j = await open();
    const [segment] = segmentsIn(dir);
    const one = callStart();
    await j.started(one);
    expect(readFileSync(join(dir, segment), 'utf8')).toContain(one.id);

    const file = (j as unknown as { active: { file: { stats: { groups: number; entries: number } } } }).active.file;
    const before = { ...file.stats };
    const calls = Array.from({ length: 50 }, () => callStart());
    await Promise.all(calls.map((c) => j.started(c)));
    expect(file.stats.entries - before.entries).toBe(50);
    expect(file.stats.groups - before.groups).toBe(1);
    const onDisk = decodeSegment(readFileSync(join(dir, segment), 'utf8'));
    expect(onDisk.entries.filter((e) => e.t === 'start')).toHaveLength(51);
  });

  it('lets a sink through once what was journaled before it is durable, even while calls keep starting', { timeout: 15_000 }, async () => {
    const j = await open();
    j.maxSegmentBytes = Number.MAX_SAFE_INTEGER; // one file, never idle
    let stop = false;
    // A start on every turn of the event loop: the file is never idle while this runs.
    const stream = (async () => {
      while (!stop) {
        void j.started(callStart());
        await new Promise((r) => setImmediate(r));
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    const extra = Array.from({ length: 5 }, () => callStart());
    for (const c of extra) void j.started(c);
    await j.durable(); // with a barrier that waited for the file to go idle, this would never return
    stop = true;
    await stream;
    const [segment] = segmentsIn(dir);
    const text = readFileSync(join(dir, segment), 'utf8');
    for (const c of extra) expect(text).toContain(c.id);
  });

  it('reads a segment torn at the end up to the last complete entry, and skips a damaged entry with a log', async () => {
    const finished = usageRecord();
    const started = callStart();
    const damaged = encodeEntry({ t: 'end', record: usageRecord() }).replace('"status":"success"', '"status":"succesX"');
    writeFileSync(
      join(dir, 'segment-000000000007.log'),
      encodeEntry({ t: 'run', run: { pid: 1, startedAtMs: 1 } }) +
        damaged +
        encodeEntry({ t: 'end', record: finished }) +
        encodeEntry({ t: 'start', call: started }) +
        encodeEntry({ t: 'end', record: usageRecord({ id: started.id }) }).slice(0, 40), // cut short by the crash
    );
    lockOfDeadProcess(dir);
    const j = await open();
    const left = await j.leftovers();
    expect(left.corrupt).toBe(1);
    expect(left.finished.map((r) => r.id)).toEqual([finished.id]);
    expect(left.interrupted.map((i) => i.call)).toEqual([started]);
    // This run writes to the next segment, never after a torn tail.
    expect(segmentsIn(dir)).toEqual(['segment-000000000007.log', 'segment-000000000008.log']);
    await j.retireLeftovers();
    expect(segmentsIn(dir)).toEqual(['segment-000000000008.log']);
  });

  it('gives what a killed run left: finished records, and starts without an end with the run’s last write time', async () => {
    const a = await open();
    const ended = callStart();
    const inFlight = callStart({ createdAtMs: Date.now() - 5_000 });
    await a.started(ended);
    await a.started(inFlight);
    const record = usageRecord({ id: ended.id });
    await a.ended(record);
    // kill -9: no close, the lock stays; its owner is gone.
    journals.splice(journals.indexOf(a), 1);
    lockOfDeadProcess(dir);

    const b = await open();
    const left = await b.leftovers();
    expect(left.finished).toEqual([record]);
    expect(left.interrupted).toHaveLength(1);
    const { call, lastWriteMs } = left.interrupted[0];
    expect(call).toEqual(inFlight);
    expect(lastWriteMs).toBeGreaterThanOrEqual(inFlight.createdAtMs + 5_000 - 50);

    const r = interruptedRecord(call, lastWriteMs, { costNanos: 185_100, unpriced: false, priceSource: 'test' });
    expect(r).toMatchObject({
      id: inFlight.id,
      status: 'error',
      errorType: 'interrupted',
      estimated: true,
      inputTokens: 1234,
      outputTokens: 0,
      totalTokens: 1234,
      costNanos: 185_100,
      responseModel: null,
      taskId: 'task-1',
      userId: 'user-1',
    });
    expect(r.latencyMs).toBeGreaterThanOrEqual(5_000 - 50);
  });

  it('charges a call interrupted after its exact prompt count was journaled that count, and one interrupted before it the upper bound', async () => {
    const a = await open();
    // Start entries hold the upper bound admission used; the worker's exact count follows.
    const counted = callStart({ promptTokens: 84_010 });
    const notCounted = callStart({ promptTokens: 5_000 });
    const ended = callStart({ promptTokens: 900 });
    await Promise.all([a.started(counted), a.started(notCounted), a.started(ended)]);
    await a.ended(usageRecord({ id: ended.id }));
    await a.counted(counted.id, 20_008);
    await a.counted(ended.id, 200); // after its end: nothing to write
    await a.counted('never-started', 7);
    await a.durable();
    const countEntries = decodeSegment(readFileSync(join(dir, segmentsIn(dir)[0]), 'utf8')).entries.filter((e) => e.t === 'count');
    expect(countEntries).toEqual([{ t: 'count', id: counted.id, promptTokens: 20_008 }]);
    journals.splice(journals.indexOf(a), 1);
    lockOfDeadProcess(dir);

    const left = await (await open()).leftovers();
    const byId = new Map(left.interrupted.map((i) => [i.call.id, i.call]));
    expect([...byId.keys()].sort()).toEqual([counted.id, notCounted.id].sort());
    expect(byId.get(counted.id)).toEqual({ ...counted, promptTokens: 20_008 });
    expect(byId.get(notCounted.id)).toEqual(notCounted);
  });

  it('refuses a folder whose lock is held by a live process, naming the folder, and takes over a dead one’s', async () => {
    await open();
    await expect(open()).rejects.toThrow(new RegExp(`usage journal folder ${dir} is in use by process ${process.pid}`));
    const other = mkdtempSync(join(tmpdir(), 'asa-journal-'));
    try {
      lockOfDeadProcess(other);
      const j = await open(other);
      expect(JSON.parse(readFileSync(join(other, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
      await j.close();
      journals.splice(journals.indexOf(j), 1);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('rotates segments and removes each once its calls have ended and the database has confirmed them', async () => {
    const j = await open();
    j.maxSegmentBytes = 4_000; // a few entries per segment
    const calls = Array.from({ length: 30 }, () => callStart());
    for (const c of calls) await j.started(c);
    const records = calls.map((c) => usageRecord({ id: c.id }));
    for (const r of records) await j.ended(r);
    await j.durable();
    await j.idle(); // a rotation may still be under way
    const many = segmentsIn(dir).length;
    expect(many).toBeGreaterThan(3);

    // Half confirmed: segments holding only confirmed ends (and ended starts) go, the rest stay.
    j.confirmed(records.slice(0, 15).map((r) => r.id));
    await j.idle();
    const some = segmentsIn(dir).length;
    expect(some).toBeLessThan(many);
    expect(some).toBeGreaterThan(1);

    j.confirmed(records.slice(15).map((r) => r.id));
    await j.idle();
    expect(segmentsIn(dir)).toHaveLength(1); // only the active one
    await j.close();
    journals.splice(journals.indexOf(j), 1);
    expect(segmentsIn(dir)).toHaveLength(0); // clean shutdown with everything stored: nothing left
    expect(readdirSync(dir)).toEqual([]); // the lock is released too
  });

  it('keeps unconfirmed records on disk at shutdown', async () => {
    const j = await open();
    const r = usageRecord();
    await j.ended(r);
    await j.close();
    journals.splice(journals.indexOf(j), 1);
    const [segment] = segmentsIn(dir);
    expect(decodeSegment(readFileSync(join(dir, segment), 'utf8')).entries.filter((e) => e.t === 'end')).toEqual([{ t: 'end', record: r }]);
  });
});
