import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { Counter, Histogram, type LabelValues } from 'prom-client';
import { metricsConfig } from '../../config/metrics.config';
import { traceExemplar } from '../../modules/metrics/exemplars';
import { METRICS_REGISTRY } from '../../modules/metrics/metrics.constants';
import type { MetricsRegistry } from '../../modules/metrics/metrics-registry.provider';
import { NANOS_PER_USD, type UsageRecord, type UsageSink, type UsageSinkPolicy } from '../sdk';

// Every bucket is a series per model and provider, the bulk of /metrics as models grow: about
// two per doubling of time, with a boundary at each alert threshold shipped (p95 latency > 30 s).
/** LLM call latency: from a fast cached answer (0.1 s) to a long reasoning call (2 min). */
export const LLM_LATENCY_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];
/** Time to first token of streamed calls. */
export const LLM_TTFT_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30];
/** How often series of models no longer used are looked for. */
const STALE_SWEEP_INTERVAL_MS = 10 * 60_000;
/** The `model` label value of the samples of models past METRICS_MAX_MODELS. */
export const OTHER_MODELS_LABEL = '(other)';
/** At most one warning per this period that models are folded into OTHER_MODELS_LABEL. */
const FOLD_WARNING_INTERVAL_MS = 10 * 60_000;

type Base = 'model';
type WithUser<L extends string> = L | 'user';

/**
 * Turns usage records into the Prometheus LLM metrics. A sink like any other (the public sink
 * API, its own queue): the metrics are as exact as the records, and a burst of calls costs the
 * callers nothing here.
 *
 * Token types are disjoint so `sum by (model) (llm_tokens_total)` is the total token count:
 * `input` is uncached prompt tokens, `cached_input` prompt tokens read from the cache,
 * `cache_write` prompt tokens written to it, `output` visible completion tokens and `reasoning`
 * hidden reasoning tokens.
 */
@Injectable()
export class PrometheusUsageSink implements UsageSink, OnModuleInit, OnModuleDestroy {
  readonly name = 'prometheus';
  /** The clock that dates a model's last use (replaceable in tests). */
  now: () => number = Date.now;
  private readonly logger = new Logger(PrometheusUsageSink.name);
  private readonly ttlMs: number;
  /** Distinct `model` label values besides OTHER_MODELS_LABEL (0: no limit). */
  private readonly maxModels: number;
  /** Last use of each `model` label value in the metrics (the models with their own series, and OTHER_MODELS_LABEL). */
  private readonly lastUsed = new Map<string, number>();
  private lastFoldWarningAt = -Infinity;
  private sweep: NodeJS.Timeout | null = null;
  // Increments are not idempotent: a failed batch is never retried (it cannot fail in practice: memory only).
  readonly policy: Partial<UsageSinkPolicy> = { onFailure: 'drop' };

  private readonly withUser: boolean;
  private readonly requests: Counter<WithUser<Base | 'provider' | 'status'>>;
  private readonly errors: Counter<Base | 'provider' | 'error_type'>;
  private readonly tokens: Counter<WithUser<Base | 'type'>>;
  private readonly cost: Counter<WithUser<Base>>;
  private readonly unpriced: Counter<Base | 'provider'>;
  private readonly latency: Histogram<Base | 'provider'>;
  private readonly ttft: Histogram<Base | 'provider'>;

  constructor(
    @Inject(METRICS_REGISTRY) registry: MetricsRegistry,
    @Inject(metricsConfig.KEY) config: ConfigType<typeof metricsConfig>,
  ) {
    this.withUser = config.extraLabels.includes('user');
    this.ttlMs = config.modelSeriesTtlMs;
    this.maxModels = config.maxModels;
    const user = <L extends string>(labels: L[]): WithUser<L>[] => (this.withUser ? [...labels, 'user'] : labels);
    const registers = [registry];
    this.requests = new Counter({
      name: 'llm_requests_total',
      help: 'LLM calls by requested model, provider and status (success or error)',
      labelNames: user(['model', 'provider', 'status']),
      registers,
    });
    this.errors = new Counter({
      name: 'llm_request_errors_total',
      help: 'Failed LLM calls by error class (http_429, timeout, aborted, connection, ...)',
      labelNames: ['model', 'provider', 'error_type'],
      registers,
    });
    this.tokens = new Counter({
      name: 'llm_tokens_total',
      help: 'LLM tokens by model and disjoint type: input (uncached prompt), cached_input, cache_write, output (visible), reasoning',
      labelNames: user(['model', 'type']),
      registers,
    });
    this.cost = new Counter({
      name: 'llm_cost_usd_total',
      help: 'Cost of LLM calls in USD (exact per-call prices; unpriced calls are counted in llm_unpriced_requests_total)',
      labelNames: user(['model']),
      enableExemplars: true,
      registers,
    });
    this.unpriced = new Counter({
      name: 'llm_unpriced_requests_total',
      help: 'LLM calls whose model has no known price: their cost is missing from llm_cost_usd_total',
      labelNames: ['model', 'provider'],
      registers,
    });
    this.latency = new Histogram({
      name: 'llm_latency_seconds',
      help: 'LLM call latency, from request to complete response (or error)',
      labelNames: ['model', 'provider'],
      buckets: LLM_LATENCY_BUCKETS,
      enableExemplars: true,
      registers,
    });
    this.ttft = new Histogram({
      name: 'llm_time_to_first_token_seconds',
      help: 'Time to the first content chunk of streamed LLM calls',
      labelNames: ['model', 'provider'],
      buckets: LLM_TTFT_BUCKETS,
      enableExemplars: true,
      registers,
    });
  }

  onModuleInit(): void {
    if (this.ttlMs <= 0) return;
    this.sweep = setInterval(() => {
      this.removeStaleSeries().catch((err: unknown) => this.logger.error(`could not remove stale model series: ${(err as Error).message}`));
    }, Math.min(STALE_SWEEP_INTERVAL_MS, this.ttlMs));
    this.sweep.unref();
  }

  onModuleDestroy(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
  }

  async write(records: readonly UsageRecord[]): Promise<void> {
    const now = this.now();
    for (const r of records) {
      const model = this.modelLabel(r.requestedModel, now);
      this.lastUsed.set(model, now);
      this.observe(r, model);
    }
  }

  /**
   * The record's model as a label value: its own while it has a slot among METRICS_MAX_MODELS,
   * else OTHER_MODELS_LABEL, so a client sending ever new model names cannot grow /metrics without
   * bound (each model adds 17 or more series). Sums over models stay exact. A slot frees when the
   * stale-series sweep removes a model's series.
   */
  private modelLabel(model: string, now: number): string {
    if (this.maxModels <= 0 || this.lastUsed.has(model)) return model;
    const slotsUsed = this.lastUsed.size - (this.lastUsed.has(OTHER_MODELS_LABEL) ? 1 : 0);
    if (slotsUsed < this.maxModels) return model;
    if (now - this.lastFoldWarningAt >= FOLD_WARNING_INTERVAL_MS) {
      this.logger.warn(
        `the LLM metrics have series for METRICS_MAX_MODELS=${this.maxModels} models: the calls of "${model.slice(0, 128)}" and of any ` +
          `other model past them are counted under model="${OTHER_MODELS_LABEL}" until a model unused for METRICS_MODEL_SERIES_TTL_HOURS ` +
          `frees its slot (this warning at most every ${FOLD_WARNING_INTERVAL_MS / 60_000} minutes)`,
      );
      this.lastFoldWarningAt = now;
    }
    return OTHER_MODELS_LABEL;
  }

  /**
   * Removes every LLM series of the models not used for METRICS_MODEL_SERIES_TTL_HOURS, so
   * /metrics does not grow with every model ever called. Prometheus marks the series stale; if
   * the model is used again its counters start from 0, which `rate()` and `increase()` read as a
   * counter reset. Returns the models removed.
   */
  async removeStaleSeries(): Promise<string[]> {
    if (this.ttlMs <= 0) return [];
    const cutoff = this.now() - this.ttlMs;
    const isStale = (model: string) => (this.lastUsed.get(model) ?? Infinity) < cutoff;
    if (![...this.lastUsed.keys()].some(isStale)) return [];
    const metrics = [this.requests, this.errors, this.tokens, this.cost, this.unpriced, this.latency, this.ttft] as (Counter<string> | Histogram<string>)[];
    const values = await Promise.all(metrics.map(async (metric) => ({ metric, values: (await metric.get()).values })));
    // From here on nothing awaits: a record written meanwhile has already moved its model's last use.
    const removed = new Set<string>();
    for (const { metric, values: samples } of values) {
      const seen = new Set<string>();
      for (const { labels } of samples) {
        const model = String(labels.model);
        if (!isStale(model)) continue;
        // A histogram's buckets, sum and count are one series set: remove it by its labels without `le`.
        const { le: _bucket, ...own } = labels as LabelValues<string> & { le?: unknown };
        const key = JSON.stringify(own);
        if (seen.has(key)) continue;
        seen.add(key);
        metric.remove(own);
        removed.add(model);
      }
    }
    for (const model of [...this.lastUsed.keys()]) if (isStale(model)) this.lastUsed.delete(model);
    return [...removed];
  }

  private observe(r: UsageRecord, model: string): void {
    const provider = r.provider;
    const userLabel = this.withUser ? { user: r.userId ?? '' } : {};
    const exemplar = traceExemplar(r.traceId);

    this.requests.inc({ model, provider, status: r.status, ...userLabel }, 1);
    if (r.status === 'error') this.errors.inc({ model, provider, error_type: r.errorType ?? 'unknown' }, 1);

    const cachedInput = r.cachedInputTokens;
    const cacheWrite = r.cacheWriteTokens;
    const tokenTypes: [string, number][] = [
      ['input', Math.max(0, r.inputTokens - cachedInput - cacheWrite)],
      ['cached_input', cachedInput],
      ['cache_write', cacheWrite],
      ['output', Math.max(0, r.outputTokens - r.reasoningTokens)],
      ['reasoning', r.reasoningTokens],
    ];
    for (const [type, n] of tokenTypes) {
      // Zero increments still create the series, so every type of a model is queryable.
      if (n > 0 || type === 'input' || type === 'output') this.tokens.inc({ model, type, ...userLabel }, n);
    }

    if (r.costNanos !== null) {
      const value = r.costNanos / NANOS_PER_USD;
      // prom-client would attach an empty exemplar (`# {}`) to a counter given no labels: pass none instead.
      if (value > 0 && Object.keys(exemplar).length > 0) this.cost.inc({ labels: { model, ...userLabel }, value, exemplarLabels: exemplar });
      else this.cost.inc({ labels: { model, ...userLabel }, value });
    } else if (r.unpriced) {
      this.unpriced.inc({ model, provider }, 1);
    }

    this.latency.observe({ labels: { model, provider }, value: r.latencyMs / 1000, exemplarLabels: exemplar });
    if (r.timeToFirstTokenMs !== null) {
      this.ttft.observe({ labels: { model, provider }, value: r.timeToFirstTokenMs / 1000, exemplarLabels: exemplar });
    }
  }
}
