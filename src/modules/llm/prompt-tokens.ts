/**
 * A call's prompt tokens: an upper bound known at once (what admission reserves), and the exact
 * count, done in a worker thread, for what is recorded (an estimated record, the journal). The
 * exact count starts when the call is admitted and is dropped, if not yet started, once the call
 * ends without needing it (the provider reported its usage).
 */
export class PromptTokens {
  private counting: Promise<number> | null = null;
  private readonly abort = new AbortController();

  constructor(
    readonly bound: number,
    private readonly count: (signal?: AbortSignal) => Promise<number>,
  ) {}

  /** Starts the exact count, if not started yet; resolves to it, or rejects when `cancel` dropped it. */
  start(): Promise<number> {
    if (!this.counting) {
      this.counting = this.count(this.abort.signal);
      this.counting.catch(() => undefined); // a dropped count is no error
    }
    return this.counting;
  }

  /** The exact count (counted again if an earlier count was dropped). */
  exact(): Promise<number> {
    if (this.abort.signal.aborted) return this.count();
    return this.start();
  }

  /** The call no longer needs the count: drop it if a worker has not taken it yet. */
  cancel(): void {
    this.abort.abort();
  }
}
