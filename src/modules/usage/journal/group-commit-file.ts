import { open, FileHandle } from 'node:fs/promises';

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  /** Resolved once written, whatever the file's durability (see `append`). */
  written: boolean;
}

/**
 * When an append's promise resolves: `disk`, once it is on the disk (`fdatasync`), so it survives
 * a power loss; `os`, once the operating system has it (`write`), so it survives the process
 * dying; it is flushed to the disk right after, and `sync()` waits for that.
 */
export type AppendDurability = 'disk' | 'os';

/**
 * An append-only file. Appends made while the file is idle or while a write is in flight are
 * gathered into one group: one `write` and one `fdatasync` for all of them (group commit), so
 * many calls starting together pay for one disk flush, not one each.
 */
export class GroupCommitFile {
  private pending: string[] = [];
  private waiters: Waiter[] = [];
  private running = false;
  private scheduled = false;
  /** Appends made so far; how many of them have been written (or failed); how many are on the disk (or failed). */
  private appended = 0;
  private written = 0;
  private settled = 0;
  private syncWaiters: { upTo: number; wake: () => void }[] = [];
  /** `os` durability: the flush in progress, and whether writes came after it started. */
  private flushing: Promise<void> | null = null;
  private flushAgain = false;
  private closed = false;
  /** Bytes in the file, including what is queued. */
  bytes: number;
  /** Writes (each one write and one fdatasync) and the entries they carried. */
  readonly stats = { groups: 0, entries: 0 };

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    size: number,
    private readonly durability: AppendDurability,
    private readonly onFlushError: (err: unknown) => void,
  ) {
    this.bytes = size;
  }

  /**
   * Opens (creating if needed) a file for appending. `onFlushError` hears of a background flush
   * that failed (`os` durability: the appends it covered had already resolved).
   */
  static async open(path: string, durability: AppendDurability = 'disk', onFlushError: (err: unknown) => void = () => undefined): Promise<GroupCommitFile> {
    const fh = await open(path, 'a');
    const { size } = await fh.stat();
    return new GroupCommitFile(path, fh, size, durability, onFlushError);
  }

  /**
   * Resolves once `data` (and everything appended before it) is durable as the file's durability
   * says, or, with `until: 'written'`, once the operating system has it, even on a `disk` file;
   * rejects if that write failed.
   */
  append(data: string, until: 'durable' | 'written' = 'durable'): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`journal file ${this.path} is closed`));
    this.pending.push(data);
    this.appended++;
    this.bytes += Buffer.byteLength(data);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject, written: until === 'written' || this.durability === 'os' }));
    if (!this.running && !this.scheduled) {
      // Wait for the end of this turn of the event loop, so appends made in the same turn
      // (calls started together) share the group.
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.run();
      });
    }
    return done;
  }

  /**
   * Resolves when everything appended so far is on the disk (or has failed), whatever the
   * durability. Appends made later do not hold it back, so it cannot starve under a steady
   * stream of appends.
   */
  sync(): Promise<void> {
    if (this.settled >= this.appended) return Promise.resolve();
    return new Promise<void>((wake) => this.syncWaiters.push({ upTo: this.appended, wake }));
  }

  /** Waits for pending appends and their flush, then closes. Later appends are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.sync();
    await this.fh.close();
  }

  private settle(upTo: number): void {
    this.settled = Math.max(this.settled, upTo);
    const ready = this.syncWaiters.filter((w) => w.upTo <= this.settled);
    if (ready.length === 0) return;
    this.syncWaiters = this.syncWaiters.filter((w) => w.upTo > this.settled);
    ready.forEach((w) => w.wake());
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const data = Buffer.from(this.pending.join(''));
        const waiters = this.waiters;
        this.pending = [];
        this.waiters = [];
        try {
          for (let off = 0; off < data.length; ) {
            const { bytesWritten } = await this.fh.write(data, off, data.length - off, null);
            off += bytesWritten;
          }
          for (const w of waiters) if (w.written) w.resolve();
          if (this.durability === 'disk') await this.fh.datasync();
          this.stats.groups++;
          this.stats.entries += waiters.length;
          for (const w of waiters) if (!w.written) w.resolve();
        } catch (err) {
          waiters.forEach((w) => w.reject(err));
        }
        this.written += waiters.length;
        if (this.durability === 'disk') this.settle(this.written);
        else this.flush();
      }
    } finally {
      this.running = false;
    }
  }

  /** `os` durability: one fdatasync at a time, covering every write made before it started. */
  private flush(): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = (async () => {
      do {
        this.flushAgain = false;
        const upTo = this.written;
        try {
          await this.fh.datasync();
        } catch (err) {
          this.onFlushError(err);
        }
        this.settle(upTo);
      } while (this.flushAgain);
      this.flushing = null;
    })();
  }
}
