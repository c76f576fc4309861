import { Inject, Injectable } from '@nestjs/common';
import { Counter, Histogram } from 'prom-client';
import { currentTraceExemplar } from './exemplars';
import type { MetricsRegistry } from './metrics-registry.provider';
import { METRICS_REGISTRY, TASK_DURATION_BUCKETS, TASK_STATUSES } from './metrics.constants';

/** Task outcome metrics; the task runner calls `taskFinished` once per task that reached an end state. */
@Injectable()
export class TaskMetricsService {
  private readonly outcomes: Counter<'status'>;
  private readonly duration: Histogram<'status'>;

  constructor(@Inject(METRICS_REGISTRY) registry: MetricsRegistry) {
    this.outcomes = new Counter({
      name: 'task_success_total',
      help: 'Tasks that finished, by outcome (success, failure, cancelled, budget_exceeded, interrupted)',
      labelNames: ['status'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'task_duration_seconds',
      help: 'Wall-clock duration of finished tasks, from start to end state, by outcome',
      labelNames: ['status'],
      buckets: TASK_DURATION_BUCKETS,
      enableExemplars: true,
      registers: [registry],
    });
    // Every outcome is exported from the start, so rate() and success ratios have series to work on.
    for (const status of TASK_STATUSES) this.outcomes.inc({ status }, 0);
  }

  /** `status`: success | failure | cancelled | budget_exceeded | interrupted. */
  taskFinished(status: string, durationSeconds: number): void {
    this.outcomes.inc({ status }, 1);
    if (Number.isFinite(durationSeconds) && durationSeconds >= 0) {
      // The exemplar links the bucket to the trace of the task when it runs inside a sampled span.
      this.duration.observe({ labels: { status }, value: durationSeconds, exemplarLabels: currentTraceExemplar() });
    }
  }
}
