import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { mkdir, open, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { usageConfig } from '../../../config/usage.config';
import type { UsageRecord } from '../../../plugins/sdk';
import { AppendDurability, GroupCommitFile } from './group-commit-file';
import { CallStart, decodeSegment, encodeEntry, RunHeader } from './journal-entry';
import { UsageJournalLockedException } from '../usage.exceptions';
import { currentOwner, JournalLock } from './journal-lock';

/** A segment is closed and a new one started once it holds this much. */
export const DEFAULT_SEGMENT_BYTES = 1024 * 1024;

const SEGMENT_NAME = /^segment-(\d{12})\.log$/;
const segmentName = (seq: number) => `segment-${String(seq).padStart(12, '0')}.log`;

interface Segment {
  readonly seq: number;
  readonly path: string;
  /** Null once closed (rotated out). */
  file: GroupCommitFile | null;
  /** Durable starts whose end is not durable yet. */
  openStarts: number;
  /** Durable ends the database has not confirmed yet. */
  unconfirmed: number;
}

/** What previous runs left in the journal. */
export interface JournalLeftovers {
  /** Calls that ended: their complete records (the last one per id). */
  readonly finished: UsageRecord[];
  /** Calls that started and never ended, with the time of their run's last journal write. */
  readonly interrupted: { call: CallStart; lastWriteMs: number }[];
  readonly segments: number;
  /** Entries skipped because they were damaged (torn tails are not counted). */
  readonly corrupt: number;
}

/**
 * The local append-only usage journal: every LLM call is written here when it starts (durable
 * before its request is sent) and when it ends (before its record reaches the sinks), so a
 * crash loses no call. Entries go to numbered segment files; a segment is removed once every
 * call it started has ended and the database has confirmed every record it holds. One process
 * per folder (a lock file). Replaying what a previous run left is UsageJournalReplayer's job.
 */
@Injectable()
export class UsageJournal implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(UsageJournal.name);
  readonly enabled: boolean;
  readonly dir: string;
  /** What `started` waits for (USAGE_JOURNAL_SYNC): the disk, or the operating system. */
  readonly sync: AppendDurability;
  /** Rotation size; a setting for tests, not for deployers. */
  maxSegmentBytes = DEFAULT_SEGMENT_BYTES;
  private lock: JournalLock | null = null;
  private active: Segment | null = null;
  private readonly segments = new Map<number, Segment>();
  private readonly startIn = new Map<string, Segment>();
  private readonly endsIn = new Map<string, Segment[]>();
  private leftoverPaths: string[] = [];
  private rotating: Promise<void> | null = null;
  private readonly removals = new Set<Promise<void>>();
  private closed = false;
  private failures = { count: 0, lastLogMs: 0 };

  constructor(@Inject(usageConfig.KEY) config: Pick<ConfigType<typeof usageConfig>, 'journal'>) {
    this.enabled = config.journal.enabled;
    this.dir = config.journal.dir;
    this.sync = config.journal.sync;
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) {
      this.logger.warn('USAGE_JOURNAL=off: LLM calls in flight or queued when the process dies are not recorded');
      return;
    }
    await this.open();
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      this.lock = await JournalLock.acquire(this.dir);
    } catch (err) {
      if (err instanceof UsageJournalLockedException) throw err;
      throw new Error(`cannot open the usage journal folder ${this.dir} (USAGE_JOURNAL_DIR): ${(err as Error).message}`);
    }
    const seqs = (await readdir(this.dir))
      .map((f) => SEGMENT_NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    this.leftoverPaths = seqs.map((s) => join(this.dir, segmentName(s)));
    this.active = await this.createSegment((seqs[seqs.length - 1] ?? 0) + 1);
    this.logger.log(`usage journal in ${this.dir}${seqs.length ? ` (${seqs.length} segments left by a previous run)` : ''}`);
  }

  /**
   * Journals a call's start; resolves once it is on the disk (USAGE_JOURNAL_SYNC=disk) or with the
   * operating system (`os`, flushed to the disk right after). Never rejects: a failed write is logged.
   */
  started(call: CallStart): Promise<void> {
    const seg = this.active;
    if (!seg?.file) return Promise.resolve();
    return seg.file.append(encodeEntry({ t: 'start', call })).then(
      () => {
        seg.openStarts++;
        this.startIn.set(call.id, seg);
        this.maybeRotate(seg);
      },
      (err) => this.writeFailed(seg, err),
    );
  }

  /**
   * Journals the exact prompt count of a call still in flight (its start entry holds an upper
   * bound). Not waited on by the call: it becomes durable with the next group of entries.
   */
  counted(id: string, promptTokens: number): Promise<void> {
    const seg = this.active;
    if (!seg?.file || !this.startIn.has(id)) return Promise.resolve();
    return seg.file.append(encodeEntry({ t: 'count', id, promptTokens })).then(
      () => undefined,
      (err) => this.writeFailed(seg, err),
    );
  }

  /**
   * Journals a call's complete record; resolves once the operating system has it (the disk
   * follows with the next group), so a process killed after the call's answer went out replays
   * the call as it ended, not as interrupted. Never rejects: a failed write is logged.
   */
  ended(record: UsageRecord): Promise<void> {
    const seg = this.active;
    if (!seg?.file) return Promise.resolve();
    return seg.file.append(encodeEntry({ t: 'end', record }), 'written').then(
      () => {
        const startSeg = this.startIn.get(record.id);
        if (startSeg) {
          this.startIn.delete(record.id);
          startSeg.openStarts--;
          this.removeIfSettled(startSeg);
        }
        seg.unconfirmed++;
        this.endsIn.set(record.id, [...(this.endsIn.get(record.id) ?? []), seg]);
        this.maybeRotate(seg);
      },
      (err) => this.writeFailed(seg, err),
    );
  }

  /** Resolves when every entry journaled so far is durable (the barrier before a sink sees records). */
  async durable(): Promise<void> {
    // A rotation closes the old file (syncing what it holds) after taking it out of `file`.
    await Promise.all([this.rotating, ...[...this.segments.values()].map((s) => s.file?.sync())]);
  }

  /** The database holds these records: their end entries are no longer needed. */
  confirmed(ids: readonly string[]): void {
    for (const id of ids) {
      const segs = this.endsIn.get(id);
      if (!segs) continue;
      this.endsIn.delete(id);
      for (const seg of segs) {
        seg.unconfirmed--;
        this.removeIfSettled(seg);
      }
    }
  }

  /** Records journaled but not yet confirmed by the database, and calls still in flight. */
  holding(): { unconfirmed: number; inFlight: number } {
    return { unconfirmed: this.endsIn.size, inFlight: this.startIn.size };
  }

  /** Reads the segments previous runs left behind. Damaged entries are logged and skipped. */
  async leftovers(): Promise<JournalLeftovers> {
    const finished = new Map<string, UsageRecord>();
    const starts = new Map<string, { call: CallStart; run: string }>();
    const counts = new Map<string, number>();
    const lastWrite = new Map<string, number>();
    let corrupt = 0;
    for (const path of this.leftoverPaths) {
      let text: string;
      let mtimeMs: number;
      try {
        [text, { mtimeMs }] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      } catch (err) {
        this.logger.error(`cannot read usage journal segment ${path}, skipped: ${String(err)}`);
        continue;
      }
      const decoded = decodeSegment(text);
      for (const c of decoded.corrupt) this.logger.error(`usage journal segment ${path}, entry ${c.line}: ${c.reason}; skipped`);
      corrupt += decoded.corrupt.length;
      if (decoded.tornTailBytes > 0) {
        this.logger.warn(`usage journal segment ${path} ends with ${decoded.tornTailBytes} bytes of an entry cut short (the process died mid-write); ignored`);
      }
      const header = decoded.entries[0]?.t === 'run' ? decoded.entries[0].run : null;
      const run = header ? runKey(header) : path;
      lastWrite.set(run, Math.max(lastWrite.get(run) ?? 0, mtimeMs));
      for (const e of decoded.entries) {
        if (e.t === 'start') starts.set(e.call.id, { call: e.call, run });
        else if (e.t === 'count') counts.set(e.id, e.promptTokens);
        else if (e.t === 'end') finished.set(e.record.id, e.record);
      }
    }
    const interrupted = [...starts.values()]
      .filter((s) => !finished.has(s.call.id))
      .map((s) => {
        const counted = counts.get(s.call.id);
        const call = counted === undefined ? s.call : { ...s.call, promptTokens: counted };
        return { call, lastWriteMs: lastWrite.get(s.run) ?? s.call.createdAtMs };
      });
    return { finished: [...finished.values()], interrupted, segments: this.leftoverPaths.length, corrupt };
  }

  /** Removes the previous runs' segments, once what they hold is journaled again or stored. */
  async retireLeftovers(): Promise<void> {
    for (const path of this.leftoverPaths.splice(0)) await unlink(path).catch((err) => this.logger.error(`cannot remove ${path}: ${String(err)}`));
  }

  /** Resolves once a segment rotation and segment removals under way have finished. */
  async idle(): Promise<void> {
    while (this.rotating || this.removals.size > 0) await Promise.all([this.rotating, ...this.removals]);
  }

  // After the usage recorder's final drain (beforeApplicationShutdown): what the database did
  // not confirm stays on disk for the next start.
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  async close(): Promise<void> {
    if (this.closed || !this.enabled) return;
    this.closed = true;
    await this.idle();
    const active = this.active;
    this.active = null;
    if (active?.file) {
      const file = active.file;
      await file.close();
      active.file = null;
    }
    for (const seg of [...this.segments.values()]) this.removeIfSettled(seg);
    await this.idle();
    const { unconfirmed, inFlight } = this.holding();
    if (unconfirmed + inFlight > 0) {
      this.logger.log(
        `usage journal closed with ${unconfirmed} records the database has not confirmed${inFlight ? ` and ${inFlight} calls that never ended` : ''}: ` +
          `they stay in ${this.dir} for the next start`,
      );
    }
    await this.lock?.release();
    this.lock = null;
  }

  // --- internals ------------------------------------------------------------------------------

  private async createSegment(seq: number): Promise<Segment> {
    const path = join(this.dir, segmentName(seq));
    const file = await GroupCommitFile.open(path, this.sync, (err) => this.writeFailed(seg, err));
    const owner = currentOwner();
    await file.append(encodeEntry({ t: 'run', run: { pid: owner.pid, startedAtMs: owner.startedAtMs } }));
    await syncDir(this.dir); // the new file's name must survive a crash too
    const seg: Segment = { seq, path, file, openStarts: 0, unconfirmed: 0 };
    this.segments.set(seq, seg);
    return seg;
  }

  private maybeRotate(seg: Segment): void {
    if (seg !== this.active || !seg.file || seg.file.bytes < this.maxSegmentBytes) return;
    this.rotate();
  }

  private rotate(): void {
    if (this.rotating || this.closed || !this.active) return;
    const old = this.active;
    this.rotating = (async () => {
      try {
        this.active = await this.createSegment(old.seq + 1);
        const file = old.file;
        old.file = null;
        await file?.close();
        this.removeIfSettled(old);
      } catch (err) {
        this.logger.error(`usage journal: cannot start a new segment in ${this.dir}: ${String(err)}`);
      } finally {
        this.rotating = null;
      }
    })();
  }

  private removeIfSettled(seg: Segment): void {
    if (seg === this.active || seg.file !== null || seg.openStarts > 0 || seg.unconfirmed > 0) return;
    if (!this.segments.delete(seg.seq)) return;
    const removal = unlink(seg.path)
      .catch((err: NodeJS.ErrnoException) => {
        // Already gone (its folder was removed, e.g. a scratch folder at shutdown): nothing to do.
        if (err.code !== 'ENOENT') this.logger.error(`cannot remove usage journal segment ${seg.path}: ${String(err)}`);
      })
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  private writeFailed(seg: Segment, err: unknown): void {
    const now = Date.now();
    this.failures.count++;
    if (now - this.failures.lastLogMs >= 10_000) {
      this.logger.error(
        `usage journal write failed in ${this.dir} (${this.failures.count} failed entries so far): ${String(err)}; ` +
          'calls are still recorded, but a crash now could lose them',
      );
      this.failures.lastLogMs = now;
    }
    // A failed write may have left part of an entry: later entries go to a fresh segment.
    if (seg === this.active) this.rotate();
  }
}

function runKey(run: RunHeader): string {
  return `${run.pid}@${run.startedAtMs}`;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
