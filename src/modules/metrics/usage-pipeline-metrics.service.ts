import { Inject, Injectable, Optional } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import type { SinkStats } from '../usage/sink-queue';
import { UsageRecorder } from '../usage/usage-recorder.service';
import type { MetricsRegistry } from './metrics-registry.provider';
import { METRICS_REGISTRY } from './metrics.constants';

/**
 * Health of the usage pipeline, per sink: read from `UsageRecorder.stats()` at scrape time, so
 * a stuck or failing sink (the database, a plugin) shows up in Prometheus.
 */
@Injectable()
export class UsagePipelineMetrics {
  constructor(
    @Inject(METRICS_REGISTRY) private readonly registry: MetricsRegistry,
    // Optional: an app without the usage pipeline still serves its other metrics.
    @Optional() private readonly recorder?: UsageRecorder,
  ) {
    this.mirrorCounter('usage_sink_write_errors_total', 'Failed batch writes per usage sink (each failed retry counts once)', (s) => s.failedWrites);
    this.mirrorCounter(
      'usage_sink_dropped_records_total',
      'Usage records a sink gave up on (drop policy, or still failing at the shutdown deadline)',
      (s) => s.dropped,
    );
    this.mirrorCounter('usage_sink_written_records_total', 'Usage records written per sink', (s) => s.written);
    const stats = () => this.stats();
    new Gauge({
      name: 'usage_sink_queue_depth',
      help: 'Usage records waiting in (or being written from) each sink queue',
      labelNames: ['sink'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of stats()) this.set({ sink: s.sink }, s.queued);
      },
    });
  }

  private stats(): SinkStats[] {
    return this.recorder?.stats() ?? [];
  }

  /** A counter that mirrors one of the recorder's monotonic counts, refreshed (synchronously) at scrape time. */
  private mirrorCounter(name: string, help: string, pick: (s: SinkStats) => number): void {
    const stats = () => this.stats();
    new Counter({
      name,
      help,
      labelNames: ['sink'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of stats()) this.inc({ sink: s.sink }, pick(s));
      },
    });
  }
}
