import { ExportResult, ExportResultCode } from '@opentelemetry/core';

/**
 * Remembers the outcome of the exports an exporter makes. The SDK's readers and processors
 * swallow export failures (they go to the global error handler), so the sink wraps its exporters
 * with one of these to learn whether the export that carried its records reached the collector.
 */
export class ExportTracker {
  private started = 0;
  private latest: Promise<ExportResult> | null = null;

  /** Wraps `export` so its outcome is tracked; use the returned function in place of the exporter's. */
  track<T>(exportFn: (items: T, done: (result: ExportResult) => void) => void): (items: T, done: (result: ExportResult) => void) => void {
    return (items, done) => {
      this.started++;
      this.latest = new Promise<ExportResult>((resolve) =>
        exportFn(items, (result) => {
          resolve(result);
          done(result);
        }),
      );
    };
  }

  /** A mark to pass to `outcomeSince`. */
  mark(): number {
    return this.started;
  }

  /**
   * The outcome of the most recent export started after `mark` (waiting for it if it is still
   * running), or null when none was started: there was nothing to export.
   */
  async outcomeSince(mark: number): Promise<{ ok: true } | { ok: false; reason: string } | null> {
    if (this.started === mark || !this.latest) return null;
    const result = await this.latest;
    if (result.code === ExportResultCode.SUCCESS) return { ok: true };
    return { ok: false, reason: result.error?.message ?? 'export failed' };
  }
}
