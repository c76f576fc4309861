/** Injection token of this app's prom-client Registry (one per application instance, never the global one). */
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** Exemplar label that carries the W3C trace id (the name Grafana's exemplar links look for by default). */
export const EXEMPLAR_TRACE_LABEL = 'trace_id';

/** Values of the `status` label of `task_success_total` and `task_duration_seconds`. */
export const TASK_STATUSES = ['success', 'failure', 'cancelled', 'budget_exceeded', 'interrupted'] as const;
export type TaskMetricStatus = (typeof TASK_STATUSES)[number];

/** Task durations: from a few seconds (a cached clone and one model call) to an hour. */
export const TASK_DURATION_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];
