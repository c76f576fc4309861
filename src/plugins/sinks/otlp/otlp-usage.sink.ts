import { Injectable } from '@nestjs/common';
import { Attributes, Counter, Histogram, ValueType } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { MetricService } from 'nestjs-otel';
import { GEN_AI_ATTR, genAiOperationName } from '../../../modules/llm/llm-span-attributes';
import { NANOS_PER_USD, type UsageRecord, type UsageSink, type UsageSinkPolicy } from '../../sdk';
import { OtlpUsageTelemetry } from './otlp-usage-telemetry';
import { usageLogAttributes } from './usage-log-attributes';

/** Bucket boundaries the GenAI semantic conventions recommend for `gen_ai.client.token.usage`. */
export const GEN_AI_TOKEN_USAGE_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** Bucket boundaries the GenAI semantic conventions recommend for `gen_ai.client.operation.duration` (seconds). */
export const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

export const OTLP_METRIC = {
  TOKEN_USAGE: 'gen_ai.client.token.usage',
  OPERATION_DURATION: 'gen_ai.client.operation.duration',
  COST: 'asa.llm.cost',
  TOKENS: 'asa.llm.tokens',
} as const;
/** Attribute of `asa.llm.tokens`: the disjoint token type, as in the Prometheus `llm_tokens_total{type}`. */
export const ASA_TOKEN_TYPE = 'asa.token.type';

/**
 * Turns usage records into OpenTelemetry metrics (and optionally one log record per record) and
 * exports them over OTLP to a collector. A sink like any other, on the public sink API.
 *
 * Metrics: the GenAI semantic-convention client metrics (`gen_ai.client.token.usage`,
 * `gen_ai.client.operation.duration`), the exact cost as `asa.llm.cost` (USD) and the disjoint
 * token counts as `asa.llm.tokens` (same split as Prometheus' `llm_tokens_total`).
 *
 * Delivery: `write` records the batch into the instruments, then exports at once and throws when
 * the export did not reach the collector, so export failures show up as this sink's write errors
 * (`usage_sink_write_errors_total{sink="otlp"}`). The policy is `drop`, never `retry`: the records
 * are already counted in the instruments, so a retry would count them twice. With the default
 * cumulative temporality a failed export loses nothing from the metrics: the next successful
 * export (the next batch, or the periodic one every OTEL_METRIC_EXPORT_INTERVAL) carries the
 * totals; only the batch's log records are lost. The queue waits up to OTEL_METRIC_EXPORT_INTERVAL
 * to gather a batch, so the collector is not called for every record.
 */
@Injectable()
export class OtlpUsageSink implements UsageSink {
  readonly name = 'otlp';
  readonly policy: Partial<UsageSinkPolicy>;

  private readonly tokenUsage: Histogram;
  private readonly duration: Histogram;
  private readonly cost: Counter;
  private readonly tokens: Counter;

  constructor(
    private readonly telemetry: OtlpUsageTelemetry,
    metricService: MetricService,
  ) {
    const { exportIntervalMs, metricsTimeoutMs, logsTimeoutMs } = telemetry.config;
    this.policy = {
      onFailure: 'drop',
      flushIntervalMs: exportIntervalMs,
      // A forced export may first wait for a periodic one in flight: two exporter timeouts, and some slack.
      writeTimeoutMs: 2 * Math.max(metricsTimeoutMs, logsTimeoutMs) + 5_000,
    };
    this.tokenUsage = metricService.getHistogram(OTLP_METRIC.TOKEN_USAGE, {
      description: 'Number of input and output tokens used per LLM call',
      unit: '{token}',
      valueType: ValueType.INT,
      advice: { explicitBucketBoundaries: GEN_AI_TOKEN_USAGE_BUCKETS },
    });
    this.duration = metricService.getHistogram(OTLP_METRIC.OPERATION_DURATION, {
      description: 'LLM call duration, from request to complete response (or error)',
      unit: 's',
      advice: { explicitBucketBoundaries: GEN_AI_DURATION_BUCKETS },
    });
    this.cost = metricService.getCounter(OTLP_METRIC.COST, {
      description: 'Cost of LLM calls in USD (exact per-call prices; unpriced calls add nothing)',
      unit: 'USD',
    });
    this.tokens = metricService.getCounter(OTLP_METRIC.TOKENS, {
      description: 'LLM tokens by disjoint type: input (uncached prompt), cached_input, cache_write, output (visible), reasoning',
      unit: '{token}',
      valueType: ValueType.INT,
    });
  }

  async write(records: readonly UsageRecord[]): Promise<void> {
    const logger = this.telemetry.usageLogger;
    for (const r of records) {
      this.observe(r);
      logger?.emit({
        eventName: 'asa.llm.usage',
        timestamp: r.createdAtMs,
        severityNumber: r.status === 'error' ? SeverityNumber.WARN : SeverityNumber.INFO,
        severityText: r.status === 'error' ? 'WARN' : 'INFO',
        body: `${r.operation} ${r.requestedModel} ${r.status}${r.errorType ? ` (${r.errorType})` : ''}`,
        attributes: usageLogAttributes(r),
      });
    }
    const { metrics, logs } = await this.telemetry.flush(logger !== null);
    const failures = [metrics && !metrics.ok ? `metrics: ${metrics.reason}` : null, logs && !logs.ok ? `logs: ${logs.reason}` : null].filter(Boolean);
    if (failures.length > 0) throw new Error(`OTLP export failed (${failures.join('; ')})`);
  }

  async close(): Promise<void> {
    await this.telemetry.shutdown();
    forgetInstruments();
  }

  private observe(r: UsageRecord): void {
    const base: Attributes = {
      [GEN_AI_ATTR.OPERATION_NAME]: genAiOperationName(r.operation),
      [GEN_AI_ATTR.PROVIDER_NAME]: r.provider,
      [GEN_AI_ATTR.REQUEST_MODEL]: r.requestedModel,
    };
    if (r.responseModel !== null) base[GEN_AI_ATTR.RESPONSE_MODEL] = r.responseModel;

    this.duration.record(r.latencyMs / 1000, r.status === 'error' ? { ...base, [GEN_AI_ATTR.ERROR_TYPE]: r.errorType ?? '_OTHER' } : base);

    // The semantic conventions record token usage when it is known: always for answered calls, and
    // for failed ones only when they did report tokens. Embeddings have no output tokens.
    const answered = r.status === 'success';
    if (answered || r.inputTokens > 0) this.tokenUsage.record(r.inputTokens, { ...base, 'gen_ai.token.type': 'input' });
    if ((answered && r.operation !== 'embeddings') || r.outputTokens > 0) {
      this.tokenUsage.record(r.outputTokens, { ...base, 'gen_ai.token.type': 'output' });
    }

    const byModel: Attributes = { [GEN_AI_ATTR.REQUEST_MODEL]: r.requestedModel, [GEN_AI_ATTR.PROVIDER_NAME]: r.provider };
    const types: [string, number][] = [
      ['input', Math.max(0, r.inputTokens - r.cachedInputTokens - r.cacheWriteTokens)],
      ['cached_input', r.cachedInputTokens],
      ['cache_write', r.cacheWriteTokens],
      ['output', Math.max(0, r.outputTokens - r.reasoningTokens)],
      ['reasoning', r.reasoningTokens],
    ];
    for (const [type, n] of types) {
      if (n > 0 || type === 'input' || type === 'output') this.tokens.add(n, { ...byModel, [ASA_TOKEN_TYPE]: type });
    }
    // Unpriced calls (costNanos null) add nothing: their cost is unknown, not zero.
    if (r.costNanos !== null) this.cost.add(r.costNanos / NANOS_PER_USD, byModel);
  }
}

/**
 * nestjs-otel caches instruments by name for the life of the process; after this sink's meter
 * provider is shut down, a later app in the same process (tests) must get fresh instruments from
 * its own provider rather than the dead ones.
 */
function forgetInstruments(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { meterData } = require('nestjs-otel/lib/metrics/metric-data') as { meterData?: Map<string, unknown> };
  for (const name of Object.values(OTLP_METRIC)) meterData?.delete(name);
}
