/** One server-sent event as it came over the wire, and its parsed fields. */
export interface SseEvent {
  /** The event's bytes, its terminating blank line included: what is passed on to the client. */
  raw: Buffer;
  /** The `event:` field, or null. */
  event: string | null;
  /** The `data:` lines joined with newlines, or null when the event has none (a comment, a retry). */
  data: string | null;
}

const LF_LF = Buffer.from('\n\n');
const CRLF_CRLF = Buffer.from('\r\n\r\n');

/**
 * Cuts an SSE byte stream into whole events without touching their bytes, so the gateway passes
 * each event on as the upstream wrote it, as soon as its blank line arrives, and can still read
 * (and hold back) the ones it must look at. Hand-written rather than an SSE client library, which
 * would hand back parsed events only and so re-encode what the client receives.
 */
export class SseEventSplitter {
  private pending: Buffer = Buffer.alloc(0);

  /** Events completed by this chunk, in order. */
  push(chunk: Uint8Array): SseEvent[] {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    const events: SseEvent[] = [];
    for (;;) {
      const lf = this.pending.indexOf(LF_LF);
      const crlf = this.pending.indexOf(CRLF_CRLF);
      let end: number;
      if (lf >= 0 && (crlf < 0 || lf + 2 <= crlf + 4)) end = lf + 2;
      else if (crlf >= 0) end = crlf + 4;
      else break;
      events.push(parseEvent(this.pending.subarray(0, end)));
      this.pending = this.pending.subarray(end);
    }
    return events;
  }

  /** Bytes after the last complete event (a stream cut short, or one not ending in a blank line). */
  rest(): Buffer {
    return this.pending;
  }
}

function parseEvent(raw: Buffer): SseEvent {
  let event: string | null = null;
  let data: string[] | null = null;
  for (const line of raw.toString('utf8').split(/\r\n|\n|\r/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') (data ??= []).push(value);
    else if (field === 'event') event = value;
  }
  return { raw, event, data: data === null ? null : data.join('\n') };
}
