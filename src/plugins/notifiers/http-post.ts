/**
 * A failed HTTP delivery. `httpStatus` is read by the alert dispatcher and stored with the attempt;
 * the message never holds the URL (webhook URLs carry their secret in the path).
 */
export class NotifierHttpError extends Error {
  constructor(
    message: string,
    readonly httpStatus: number | null,
  ) {
    super(message);
    this.name = 'NotifierHttpError';
  }
}

/**
 * POSTs a body and fails on anything but a 2xx answer. `target` names the receiver in errors
 * (e.g. "Slack") in place of the URL; the per-request timeout stops a receiver that never answers
 * from holding a socket after the dispatcher has given up on the attempt.
 */
export async function postOrThrow(
  target: string,
  url: string,
  init: { body: string; headers: Record<string, string>; timeoutMs: number },
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body: init.body, headers: init.headers, signal: AbortSignal.timeout(init.timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const reason = e.name === 'TimeoutError' ? `no answer within ${init.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new NotifierHttpError(`${target} could not be reached: ${redact(reason, url)}`, null);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) {
    // A receiver (or a proxy in front of it) may echo the request line; the path can be the secret.
    const body = redact(text.replace(/\s+/g, ' ').trim(), url).slice(0, 200);
    throw new NotifierHttpError(`${target} answered HTTP ${res.status}${body ? `: ${body}` : ''}`, res.status);
  }
}

/** Removes the URL and its path (where webhook URLs keep their secret) from a message. */
function redact(text: string, url: string): string {
  let out = text.split(url).join('<url>');
  const { pathname } = new URL(url);
  if (pathname.length > 1) out = out.split(pathname).join('<path>');
  return out;
}
