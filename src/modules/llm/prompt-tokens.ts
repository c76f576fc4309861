/**
 * A call's prompt tokens: an upper bound known at once (what admission reserves), and the exact
 * count, done in a worker thread, for what is recorded (an estimated record, the journal). The
 * exact count is made when a record needs it, or for the journal once the call has lasted a while;
 * it is dropped, if a worker has not taken it yet, once the call ends without needing it (the
 * provider reported its usage), so fast calls cost the workers nothing.
 */
export class PromptTokens {
  private counting: Promise<number> | null = null;
  // Made only for a count actually started: aborting a signal costs more than the rest of a call's bookkeeping.
  private abort: AbortController | null = null;
  private cancelled = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly bound: number,
    private readonly count: (signal?: AbortSignal) => Promise<number>,
  ) {}

  /** Starts the exact count, if not started yet; resolves to it, or rejects when `cancel` dropped it. */
  start(): Promise<number> {
    if (!this.counting) {
      this.abort = new AbortController();
      this.counting = this.count(this.abort.signal);
      this.counting.catch(() => undefined); // a dropped count is no error
    }
    return this.counting;
  }

  /** The exact count (counted again if an earlier count was dropped). */
  exact(): Promise<number> {
    if (this.cancelled) return this.count();
    return this.start();
  }

  /** Counts if the call is still in flight after `delayMs`, and hands the count to `then`. */
  countLater(delayMs: number, then: (count: number) => void): void {
    if (this.cancelled) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.start().then(then, () => undefined);
    }, delayMs);
    this.timer.unref();
  }

  /** The call no longer needs the count: drop it if a worker has not taken it yet. */
  cancel(): void {
    this.cancelled = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
  }
}
