import { trace } from '@opentelemetry/api';
import { EXEMPLAR_TRACE_LABEL } from './metrics.constants';

const NO_EXEMPLAR: Record<string, string> = {};
const TRACE_ID = /^[0-9a-f]{32}$/;

/** Exemplar labels for a W3C trace id; empty (no exemplar) when there is none. */
export function traceExemplar(traceId: string | null | undefined): Record<string, string> {
  return traceId && TRACE_ID.test(traceId) && traceId !== '0'.repeat(32) ? { [EXEMPLAR_TRACE_LABEL]: traceId } : NO_EXEMPLAR;
}

/** Exemplar labels for the active span's trace (only when it is sampled); empty when tracing is off. */
export function currentTraceExemplar(): Record<string, string> {
  const ctx = trace.getActiveSpan()?.spanContext();
  // Bit 0 of traceFlags is "sampled": an unsampled trace id would link to a trace that does not exist.
  return ctx && (ctx.traceFlags & 1) === 1 ? traceExemplar(ctx.traceId) : NO_EXEMPLAR;
}
