import { createServer, IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import * as protobuf from 'protobufjs';

/**
 * A local OTLP/HTTP receiver (what Jaeger or a collector is to the service): accepts
 * `POST /v1/traces`, `/v1/metrics` and `/v1/logs` in http/protobuf or http/json, decodes every
 * span, metric data point and log record and keeps them.
 */

/** The part of opentelemetry/proto/collector/trace/v1 (and its imports) a span tree check needs; other fields are skipped. */
const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10; repeated Event events = 11;
  Status status = 15; fixed32 flags = 16;
}
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;

/** The parts of opentelemetry/proto/collector/{metrics,logs}/v1 the usage sink checks need (exemplars and summaries skipped). */
const OTLP_METRICS_LOGS_PROTO = `
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; string schema_url = 3; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; string schema_url = 3; }
message Metric {
  string name = 1; string description = 2; string unit = 3;
  oneof data { Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9; }
}
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message NumberDataPoint {
  repeated KeyValue attributes = 7; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  oneof value { double as_double = 4; sfixed64 as_int = 6; }
  uint32 flags = 8;
}
message HistogramDataPoint {
  repeated KeyValue attributes = 9; fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3;
  fixed64 count = 4; optional double sum = 5; repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7;
  uint32 flags = 10; optional double min = 11; optional double max = 12;
}
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; string schema_url = 3; }
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; string schema_url = 3; }
message LogRecord {
  fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11; int32 severity_number = 2; string severity_text = 3;
  AnyValue body = 5; repeated KeyValue attributes = 6; uint32 dropped_attributes_count = 7; fixed32 flags = 8;
  bytes trace_id = 9; bytes span_id = 10; string event_name = 12;
}
`;

const otlpRoot = protobuf.parse(OTLP_TRACE_PROTO + OTLP_METRICS_LOGS_PROTO, { keepCase: false }).root;
const ExportTraceServiceRequest = otlpRoot.lookupType('otlp.ExportTraceServiceRequest');
const ExportMetricsServiceRequest = otlpRoot.lookupType('otlp.ExportMetricsServiceRequest');
const ExportLogsServiceRequest = otlpRoot.lookupType('otlp.ExportLogsServiceRequest');

export type AttributeValue = string | number | boolean | AttributeValue[] | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNanos: bigint;
  endNanos: bigint;
  attributes: Record<string, AttributeValue>;
  status: { code: number; message: string };
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  scope: string;
  resource: Record<string, AttributeValue>;
}

/** One data point of a received metric (sums and gauges have `value`, histograms `count`, `sum`, buckets). */
export interface ReceivedMetricPoint {
  name: string;
  unit: string;
  kind: 'sum' | 'gauge' | 'histogram';
  /** OTLP AggregationTemporality: 1 delta, 2 cumulative (0 for gauges). */
  temporality: number;
  attributes: Record<string, AttributeValue>;
  startNanos: bigint;
  timeNanos: bigint;
  value?: number;
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
  scope: string;
  resource: Record<string, AttributeValue>;
}

export interface ReceivedLogRecord {
  timeNanos: bigint;
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: AttributeValue;
  attributes: Record<string, AttributeValue>;
  scope: string;
  resource: Record<string, AttributeValue>;
}

export interface ReceivedExport {
  /** `/v1/traces`, `/v1/metrics` or `/v1/logs`. */
  path: string;
  contentType: string;
  headers: IncomingHttpHeaders;
  /** Spans, metric data points or log records in this export. */
  spanCount: number;
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  spans: ReceivedSpan[];
  /** Every metric data point received, in arrival order (cumulative points repeat in each export). */
  metricPoints: ReceivedMetricPoint[];
  logRecords: ReceivedLogRecord[];
  exports: ReceivedExport[];
  /** Resolves with the spans once `predicate` holds on them; rejects after `timeoutMs`. */
  waitFor<T>(what: string, predicate: (spans: ReceivedSpan[]) => T | undefined | false | null, timeoutMs?: number): Promise<T>;
  /** Like `waitFor`, with the whole receiver (spans, metric points, log records) given to `predicate`. */
  waitUntil<T>(what: string, predicate: (r: OtlpReceiver) => T | undefined | false | null, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

/* --------------------------------- decoding (both encodings) --------------------------------- */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const hex = (v: Any): string => {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v.toLowerCase(); // OTLP/JSON: ids are hex strings
  return Buffer.from(v as Uint8Array).toString('hex');
};

function anyValue(v: Any): AttributeValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue); // protobuf Long / JSON string
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.bytesValue !== undefined) return hex(v.bytesValue);
  if (v.kvlistValue !== undefined) return JSON.stringify(attributes(v.kvlistValue.values));
  return null;
}

function attributes(list: Any[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value);
  return out;
}

const nanos = (v: Any): bigint => (v === undefined || v === null ? 0n : BigInt(v.toString()));

/** Flattens an ExportTraceServiceRequest (protobuf object with camelCase fields, or OTLP/JSON) into spans. */
function flatten(request: Any): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of request.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: Number(s.kind ?? 0),
          startNanos: nanos(s.startTimeUnixNano),
          endNanos: nanos(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          status: { code: Number(s.status?.code ?? 0), message: s.status?.message ?? '' },
          events: (s.events ?? []).map((e: Any) => ({ name: e.name, attributes: attributes(e.attributes) })),
          scope: ss.scope?.name ?? '',
          resource,
        });
      }
    }
  }
  return out;
}

/** Flattens an ExportMetricsServiceRequest (either encoding) into data points. */
function flattenMetrics(request: Any): ReceivedMetricPoint[] {
  const out: ReceivedMetricPoint[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    const resource = attributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const kind = m.sum ? 'sum' : m.gauge ? 'gauge' : m.histogram ? 'histogram' : null;
        if (!kind) continue;
        const data = m[kind];
        for (const p of data.dataPoints ?? []) {
          const point: ReceivedMetricPoint = {
            name: m.name,
            unit: m.unit ?? '',
            kind,
            temporality: Number(data.aggregationTemporality ?? 0),
            attributes: attributes(p.attributes),
            startNanos: nanos(p.startTimeUnixNano),
            timeNanos: nanos(p.timeUnixNano),
            scope: sm.scope?.name ?? '',
            resource,
          };
          if (kind === 'histogram') {
            point.count = Number(p.count ?? 0);
            point.sum = p.sum === undefined ? undefined : Number(p.sum);
            point.bucketCounts = (p.bucketCounts ?? []).map(Number);
            point.explicitBounds = (p.explicitBounds ?? []).map(Number);
          } else {
            point.value = p.asDouble !== undefined ? Number(p.asDouble) : Number(p.asInt ?? 0);
          }
          out.push(point);
        }
      }
    }
  }
  return out;
}

/** Flattens an ExportLogsServiceRequest (either encoding) into log records. */
function flattenLogs(request: Any): ReceivedLogRecord[] {
  const out: ReceivedLogRecord[] = [];
  for (const rl of request.resourceLogs ?? []) {
    const resource = attributes(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      for (const l of sl.logRecords ?? []) {
        out.push({
          timeNanos: nanos(l.timeUnixNano),
          severityNumber: Number(l.severityNumber ?? 0),
          severityText: l.severityText ?? '',
          eventName: l.eventName ?? '',
          body: anyValue(l.body),
          attributes: attributes(l.attributes),
          scope: sl.scope?.name ?? '',
          resource,
        });
      }
    }
  }
  return out;
}

function decodeBody(type: protobuf.Type, contentType: string, body: Buffer): Any {
  if (contentType.startsWith('application/json')) return JSON.parse(body.toString('utf8'));
  if (contentType.startsWith('application/x-protobuf')) return type.toObject(type.decode(body), { longs: String, defaults: false });
  throw new Error(`unexpected OTLP content type ${contentType}`);
}

export const decodeMetricsExport = (contentType: string, body: Buffer) => flattenMetrics(decodeBody(ExportMetricsServiceRequest, contentType, body));
export const decodeLogsExport = (contentType: string, body: Buffer) => flattenLogs(decodeBody(ExportLogsServiceRequest, contentType, body));

/**
 * The latest point of every series (metric name + attributes) of metric `name`: with cumulative
 * temporality, the current totals. Points of the same series are told apart by their time.
 */
export function latestPoints(points: ReceivedMetricPoint[], name: string): ReceivedMetricPoint[] {
  const bySeries = new Map<string, ReceivedMetricPoint>();
  for (const p of points) {
    if (p.name !== name) continue;
    const key = JSON.stringify(Object.entries(p.attributes).sort(([a], [b]) => a.localeCompare(b)));
    const seen = bySeries.get(key);
    if (!seen || p.timeNanos >= seen.timeNanos) bySeries.set(key, p);
  }
  return [...bySeries.values()];
}

export function decodeTraceExport(contentType: string, body: Buffer): ReceivedSpan[] {
  if (contentType.startsWith('application/json')) return flatten(JSON.parse(body.toString('utf8')));
  if (contentType.startsWith('application/x-protobuf')) {
    return flatten(ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), { longs: String, defaults: false }));
  }
  throw new Error(`unexpected OTLP content type ${contentType}`);
}

/* ----------------------------------------- server ----------------------------------------- */

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metricPoints: ReceivedMetricPoint[] = [];
  const logRecords: ReceivedLogRecord[] = [];
  const exports: ReceivedExport[] = [];
  const errors: Error[] = [];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '');
      const path = req.url ?? '';
      if (req.method !== 'POST' || !['/v1/traces', '/v1/metrics', '/v1/logs'].includes(path)) {
        res.writeHead(404).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        let count: number;
        if (path === '/v1/traces') {
          const received = decodeTraceExport(contentType, body);
          spans.push(...received);
          count = received.length;
        } else if (path === '/v1/metrics') {
          const received = decodeMetricsExport(contentType, body);
          metricPoints.push(...received);
          count = received.length;
        } else {
          const received = decodeLogsExport(contentType, body);
          logRecords.push(...received);
          count = received.length;
        }
        exports.push({ path, contentType, headers: req.headers, spanCount: count });
        // An empty Export*ServiceResponse: zero bytes in protobuf, {} in JSON.
        res.writeHead(200, { 'content-type': contentType.startsWith('application/json') ? 'application/json' : 'application/x-protobuf' });
        res.end(contentType.startsWith('application/json') ? '{}' : undefined);
      } catch (err) {
        errors.push(err as Error);
        res.writeHead(400).end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const receiver: OtlpReceiver = {
    url: `http://127.0.0.1:${port}`,
    spans,
    metricPoints,
    logRecords,
    exports,
    async waitUntil(what, predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (errors.length > 0) throw errors[0];
        const result = predicate(receiver);
        if (result) return result as Exclude<typeof result, undefined | false | null>;
        if (Date.now() > deadline) {
          throw new Error(
            `OTLP receiver: timed out waiting for ${what}; received ${spans.length} spans, ${metricPoints.length} metric points ` +
              `(${[...new Set(metricPoints.map((p) => p.name))].join(', ')}), ${logRecords.length} log records`,
          );
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async waitFor(what, predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (errors.length > 0) throw errors[0];
        const result = predicate(spans);
        if (result) return result as Exclude<typeof result, undefined | false | null>;
        if (Date.now() > deadline) {
          const names = [...new Set(spans.map((s) => s.name))].join(', ');
          throw new Error(`OTLP receiver: timed out waiting for ${what}; received ${spans.length} spans: ${names}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return receiver;
}

/** The chain of ancestors of a span (nearest first), within the spans received. */
export function ancestors(spans: ReceivedSpan[], span: ReceivedSpan): ReceivedSpan[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const out: ReceivedSpan[] = [];
  let parent = byId.get(span.parentSpanId);
  while (parent && out.length < 100) {
    out.push(parent);
    parent = byId.get(parent.parentSpanId);
  }
  return out;
}

export interface TracingToReceiver {
  receiver: OtlpReceiver;
  /** Shuts the SDK down (flushing), closes the receiver and restores the environment. */
  stop(): Promise<void>;
}

/**
 * Starts a local OTLP receiver and the service's OpenTelemetry SDK exporting to it, with `env`
 * (OTEL_* settings; undefined removes a variable) on top. Tracing is process-wide: call this from
 * one test file, before the app and the instrumented modules are imported.
 */
export async function startTracingToReceiver(env: Record<string, string | undefined> = {}): Promise<TracingToReceiver> {
  const { startTracing, shutdownTracing } = await import('../../src/modules/metrics/tracing');
  const saved = { ...process.env };
  const receiver = await startOtlpReceiver();
  const settings: Record<string, string | undefined> = {
    ENABLE_OPENTELEMETRY: 'true',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: '50',
    ...env,
  };
  for (const [k, v] of Object.entries(settings)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  if (!startTracing()) throw new Error('tracing did not start');
  return {
    receiver,
    stop: async () => {
      await shutdownTracing();
      await receiver.close();
      process.env = saved;
    },
  };
}
