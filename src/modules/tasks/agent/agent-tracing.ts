import { Attributes, Span, SpanStatusCode, trace } from '@opentelemetry/api';

const tracer = trace.getTracer('asa-backend.tasks.agent');

/**
 * Runs `fn` in a child span of the active span (the task's span), recording a thrown error.
 * Without a configured tracer provider this is a no-op span.
 */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      throw err;
    } finally {
      span.end();
    }
  });
}
