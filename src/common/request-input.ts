import { HttpStatus } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest, RawServerDefault } from 'fastify';
import { Transform } from 'node:stream';
import { DomainException } from './domain.exception';
import { bodyLimits, bodyTooLarge } from './body-limits';

/** Deepest nesting of arrays and objects a JSON body may have; no request of this API needs more than a few. */
export const MAX_JSON_DEPTH = 64;

/** A request refused before validation: too deeply nested, a NUL character, an empty query value. */
export class RequestInputException extends DomainException {
  readonly status = HttpStatus.BAD_REQUEST;
  constructor(
    readonly code:
      | 'REQUEST_JSON_TOO_DEEP'
      | 'REQUEST_NUL_CHARACTER'
      | 'REQUEST_EMPTY_PARAMETER'
      | 'REQUEST_UNNAMED_PARAMETER'
      | 'REQUEST_BODY_NOT_OBJECT'
      | 'REQUEST_FORBIDDEN_KEY',
    message: string,
  ) {
    super(message);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x5b, 0x7b]); // [ {
const CLOSE = new Set([0x5d, 0x7d]); // ] }

/**
 * Whether a JSON text nests arrays/objects deeper than `max`, found by one pass over the bytes
 * before anything parses it (no recursion, so 100,000 brackets cost nothing). UTF-8 continuation
 * bytes are never ASCII, so brackets and quotes inside multi-byte characters cannot be mistaken.
 */
export function jsonDepthExceeds(body: Buffer | string, max: number): boolean {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (OPEN.has(b)) {
      if (++depth > max) return true;
    } else if (CLOSE.has(b)) {
      depth--;
    }
  }
  return false;
}

/** Display form of a field path: NUL and other control characters in a key are shown escaped. */
const shown = (path: string) => path.replace(/[\u0000-\u001f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * Paths of the strings (values and keys) holding a NUL character. No text field of this API can
 * hold one: PostgreSQL refuses it in text columns, and a shell command cannot carry it.
 */
export function nulPaths(value: unknown, path = ''): string[] {
  if (typeof value === 'string') return value.includes('\u0000') ? [path || '(body)'] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => nulPaths(v, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => {
      const p = path ? `${path}.${k}` : k;
      return k.includes('\u0000') ? [p] : nulPaths(v, p);
    });
  }
  return [];
}

/** Query parameters given without a value (`?days=` or `?days`). */
function emptyQueryParameters(query: unknown): string[] {
  if (typeof query !== 'object' || query === null) return [];
  return Object.entries(query).filter(([, v]) => v === '' || (Array.isArray(v) && v.some((x) => x === ''))).map(([k]) => k);
}

/**
 * Why Fastify's JSON parser refused a body, which it reports only as "not valid JSON": a syntax
 * error (with the position the platform's parser gives), or a "__proto__" / "constructor.prototype"
 * key, valid JSON that Fastify refuses because it could reach Object.prototype.
 */
function explainJsonRefusal(text: string): Error | null {
  try {
    JSON.parse(text);
  } catch (err) {
    return Object.assign(new Error(`the body is not valid JSON: ${(err as Error).message}`), { statusCode: 400 });
  }
  return new RequestInputException('REQUEST_FORBIDDEN_KEY', 'the JSON body must not contain a "__proto__" key, nor a "constructor" key holding "prototype"');
}

/** What a JSON body is, for a message: "an array", "null", "a string". */
function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function checkRequest(req: FastifyRequest): void {
  // Every body this API takes is a JSON object; an array or a bare value would otherwise be
  // reported field by field ("property 0 should not exist"), as if the caller had sent an object.
  if (req.body !== undefined && (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))) {
    throw new RequestInputException('REQUEST_BODY_NOT_OBJECT', `the request body must be a JSON object ({ ... }), got ${jsonKind(req.body)}`);
  }
  if (typeof req.query === 'object' && req.query !== null && Object.prototype.hasOwnProperty.call(req.query, '')) {
    throw new RequestInputException('REQUEST_UNNAMED_PARAMETER', 'the query string has a parameter without a name (such as "?=1"): name it or leave it out');
  }
  const nul = [...nulPaths(req.params ?? {}), ...nulPaths(req.query ?? {}), ...(req.body === undefined ? [] : nulPaths(req.body))];
  if (nul.length > 0) {
    throw new RequestInputException(
      'REQUEST_NUL_CHARACTER',
      [...new Set(nul)].map((p) => `${shown(p)} must not contain NUL characters (\\u0000)`).join('; '),
    );
  }
  const empty = emptyQueryParameters(req.query);
  if (empty.length > 0) {
    throw new RequestInputException(
      'REQUEST_EMPTY_PARAMETER',
      empty.map((k) => `${shown(k)} must not be empty: give it a value or leave the parameter out`).join('; '),
    );
  }
}

/**
 * Input rules that hold for every route, checked before Nest's validation: JSON bodies nested
 * deeper than MAX_JSON_DEPTH (class-transformer would recurse into them until the stack overflows),
 * NUL characters in any body field, query or path parameter, and empty query values (`?days=`
 * would otherwise read as 0). Each answers 400 naming the field.
 */
export function installRequestInputChecks(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  const limits = bodyLimits();
  // A declared length over the route's limit is refused before the body is read.
  fastify.addHook('onRequest', (req, _reply, done) => done(bodyTooLarge(limits, req.url, Number(req.headers['content-length'] ?? 0))));
  // A body sent without a length (chunked) is counted as it comes and refused at the route's own
  // limit, with the message that names it: left to Fastify, it would be read up to the largest
  // limit and refused there as "Request body is too large".
  fastify.addHook('preParsing', (req, _reply, payload, done) => {
    // Only a chunked body comes without a length (a request with neither has no body).
    if (req.headers['transfer-encoding'] === undefined || req.headers['content-length'] !== undefined) {
      done(null, payload);
      return;
    }
    let received = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, next) {
        received += chunk.length;
        next(bodyTooLarge(limits, req.url, received) ?? null, chunk);
      },
    });
    payload.pipe(counted);
    done(null, counted);
  });
  app.useBodyParser<RawServerDefault>('application/json', { bodyLimit: fastify.initialConfig.bodyLimit }, (req, body, done) => {
    const tooLarge = bodyTooLarge(limits, req.url, body.length); // sent without a length (chunked)
    if (tooLarge) {
      done(tooLarge, undefined);
      return;
    }
    if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) {
      done(new RequestInputException('REQUEST_JSON_TOO_DEEP', `the JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`), undefined);
      return;
    }
    const { onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig;
    const text = body.toString('utf8');
    fastify.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error')(req, text, (err, parsed) => {
      done(err && text.length > 0 ? (explainJsonRefusal(text) ?? err) : err, parsed);
    });
  });
  fastify.addHook('preValidation', (req, _reply, done) => {
    try {
      checkRequest(req);
      done();
    } catch (err) {
      done(err as Error);
    }
  });
}
