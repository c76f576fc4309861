import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';

/** One exact count, run in a worker thread so a long prompt never holds the event loop. */
export type CountJob =
  | { readonly kind: 'chat'; readonly model: string; readonly messages?: readonly unknown[]; readonly tools?: readonly unknown[] }
  | { readonly kind: 'text'; readonly model: string; readonly text: string }
  | { readonly kind: 'embedding'; readonly model: string; readonly input: unknown }
  | { readonly kind: 'responses'; readonly model: string; readonly instructions?: unknown; readonly input: unknown; readonly tools?: readonly unknown[] };

/** A worker with nothing to count for this long exits (the next count starts one again). */
const IDLE_TIMEOUT_MS = 30_000;

/**
 * A count still running after this long is stopped (its worker thread is ended and replaced), so
 * one huge or pathological prompt cannot hold the counts of every other call behind it. The
 * caller then uses the prompt's upper bound (see TokenEstimator).
 */
export const COUNT_DEADLINE_MS = 5_000;

/** A count stopped at its deadline. */
export class CountDeadlineError extends Error {
  constructor(readonly deadlineMs: number) {
    super(`token count stopped after ${deadlineMs} ms`);
    this.name = 'CountDeadlineError';
  }
}

interface Waiting {
  readonly job: CountJob;
  readonly resolve: (n: number) => void;
  readonly reject: (err: unknown) => void;
  readonly signal?: AbortSignal;
  readonly onAbort: () => void;
}

/**
 * Token counts in worker threads (piscina), fed from a queue of our own: a count whose call no
 * longer needs it (the provider reported usage first) is dropped before it starts. Piscina would
 * terminate a worker to abort a count already running; here only counts not yet handed to a
 * worker are dropped, so a busy burst of short calls leaves the workers idle instead of counting
 * prompts nobody will read.
 */
export class TokenCountPool {
  private readonly piscina: Piscina;
  private readonly threads: number;
  private readonly waiting: Waiting[] = [];
  private running = 0;

  /** @param deadlineMs read at each count's start (a function, so a test can change it) */
  constructor(private readonly deadlineMs: () => number = () => COUNT_DEADLINE_MS) {
    // One core stays for the event loop.
    this.threads = Math.max(1, availableParallelism() - 1);
    const compiled = join(__dirname, 'token-count.worker.js');
    // From the TypeScript sources (tests, benches) the worker compiles its file with ts-node.
    const fromSource = !existsSync(compiled);
    this.piscina = new Piscina({
      filename: fromSource ? join(__dirname, 'token-count.worker.ts') : compiled,
      execArgv: fromSource ? ['--require', 'ts-node/register/transpile-only'] : [],
      minThreads: 0,
      maxThreads: this.threads,
      idleTimeout: IDLE_TIMEOUT_MS,
    });
  }

  run(job: CountJob, signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) return Promise.reject(abortError());
    return new Promise<number>((resolve, reject) => {
      const entry: Waiting = {
        job,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiting.indexOf(entry);
          if (i < 0) return; // already running: its result is simply not used
          this.waiting.splice(i, 1);
          reject(abortError());
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
      this.next();
    });
  }

  async close(): Promise<void> {
    for (const w of this.waiting.splice(0)) w.reject(new Error('token counting stopped: the service is shutting down'));
    await this.piscina.destroy();
  }

  /** Waiting counts not yet handed to a worker (for tests and benches). */
  get queued(): number {
    return this.waiting.length;
  }

  private next(): void {
    while (this.running < this.threads && this.waiting.length > 0) {
      const entry = this.waiting.shift()!;
      entry.signal?.removeEventListener('abort', entry.onAbort);
      this.running++;
      const deadline = new AbortController();
      const ms = this.deadlineMs();
      const timer = setTimeout(() => deadline.abort(), ms);
      (this.piscina.run(entry.job, { signal: deadline.signal }) as Promise<number>)
        .then(entry.resolve, (err: unknown) => entry.reject(deadline.signal.aborted ? new CountDeadlineError(ms) : err))
        .finally(() => {
          clearTimeout(timer);
          this.running--;
          this.next();
        });
    }
  }
}

function abortError(): Error {
  const err = new Error('token count no longer needed');
  err.name = 'AbortError';
  return err;
}
