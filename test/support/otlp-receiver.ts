import { createServer, IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import * as protobuf from 'protobufjs';

/**
 * A local OTLP/HTTP trace receiver (what Jaeger or a collector is to the service): accepts
 * `POST /v1/traces` in http/protobuf or http/json, decodes every span and keeps it.
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

const ExportTraceServiceRequest = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: false }).root.lookupType('otlp.ExportTraceServiceRequest');

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

export interface ReceivedExport {
  contentType: string;
  headers: IncomingHttpHeaders;
  spanCount: number;
}

export interface OtlpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  spans: ReceivedSpan[];
  exports: ReceivedExport[];
  /** Resolves with the spans once `predicate` holds on them; rejects after `timeoutMs`. */
  waitFor<T>(what: string, predicate: (spans: ReceivedSpan[]) => T | undefined | false | null, timeoutMs?: number): Promise<T>;
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
  const exports: ReceivedExport[] = [];
  const errors: Error[] = [];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const contentType = String(req.headers['content-type'] ?? '');
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const received = decodeTraceExport(contentType, body);
        spans.push(...received);
        exports.push({ contentType, headers: req.headers, spanCount: received.length });
        // An empty ExportTraceServiceResponse: zero bytes in protobuf, {} in JSON.
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

  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    exports,
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
