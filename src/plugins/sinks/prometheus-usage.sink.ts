import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { Counter, Histogram } from 'prom-client';
import { metricsConfig } from '../../config/metrics.config';
import { traceExemplar } from '../../modules/metrics/exemplars';
import { METRICS_REGISTRY } from '../../modules/metrics/metrics.constants';
import type { MetricsRegistry } from '../../modules/metrics/metrics-registry.provider';
import { NANOS_PER_USD, type UsageRecord, type UsageSink, type UsageSinkPolicy } from '../sdk';

/** LLM call latency: from a fast cached answer (0.1 s) to a long reasoning call (2 min). */
export const LLM_LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120];
/** Time to first token of streamed calls. */
export const LLM_TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60];

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
export class PrometheusUsageSink implements UsageSink {
  readonly name = 'prometheus';
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

  async write(records: readonly UsageRecord[]): Promise<void> {
    for (const r of records) this.observe(r);
  }

  private observe(r: UsageRecord): void {
    const model = r.requestedModel;
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
