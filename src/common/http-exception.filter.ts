import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { DatabaseUnavailableException, databaseUnavailableReason } from '../database/database-errors';
import { DomainException } from './domain.exception';
import { isOpenAiPath, OpenAiErrorException, toOpenAiError } from './openai-error';

/** `error` is always the HTTP reason phrase ("Bad Request"); what went wrong is in `message` and `code`. */
const reason = (status: number): string => STATUS_CODES[status] ?? 'Error';

/** The one shape of every error body. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  /** Per-field problems for validation errors. */
  errors?: string[];
  code?: string;
  /** Structured detail some domain errors add (e.g. each check of /health). */
  details?: Record<string, unknown>;
  /** Present on 5xx responses; the same id is in the server log. */
  errorId?: string;
}

interface ErrorReply {
  body: ErrorBody;
  /** Seconds for `Retry-After` (503s the client may simply repeat). */
  retryAfter?: number;
}

/**
 * Maps domain exceptions, Nest's HTTP exceptions and database outages to JSON; logs every 5xx
 * with an id. A database that is down, unreachable or locked is a 503 with `Retry-After` and the
 * code DATABASE_UNAVAILABLE, whichever endpoint met it, never a generic 500.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const response = host.switchToHttp().getResponse();
    if (exception instanceof OpenAiErrorException) {
      for (const [name, value] of Object.entries(exception.headers)) httpAdapter.setHeader(response, name, value);
      httpAdapter.reply(response, exception.body, exception.status);
      return;
    }
    const { body, retryAfter } = this.toReply(exception);
    if (retryAfter !== undefined) httpAdapter.setHeader(response, 'Retry-After', String(retryAfter));
    // The OpenAI-compatible gateway answers in the shape its clients' SDKs parse.
    if (isOpenAiPath(host.switchToHttp().getRequest<{ url?: string }>()?.url)) {
      const openAi = toOpenAiError(body);
      for (const [name, value] of Object.entries(openAi.headers)) httpAdapter.setHeader(response, name, value);
      httpAdapter.reply(response, openAi.body, openAi.status);
      return;
    }
    httpAdapter.reply(response, body, body.statusCode);
  }

  private toReply(exception: unknown): ErrorReply {
    const dbReason = exception instanceof DomainException ? null : databaseUnavailableReason(exception);
    if (dbReason !== null) return this.toReply(new DatabaseUnavailableException(dbReason, undefined, exception));
    if (exception instanceof DomainException) {
      const body: ErrorBody = { statusCode: exception.status, error: reason(exception.status), code: exception.code, message: exception.message };
      if (exception.details && Object.keys(exception.details).length > 0) body.details = exception.details;
      let retryAfter: number | undefined;
      if (exception instanceof DatabaseUnavailableException) {
        retryAfter = exception.retryAfterSeconds;
        this.log5xx(body, exception.failure ?? exception, 'warn');
      } else if (exception.status >= 500) {
        this.log5xx(body, exception, 'error');
      }
      return { body, retryAfter };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const res = exception.getResponse();
      if (status < 500) {
        if (typeof res === 'object' && res !== null) {
          const r = res as { message?: string | string[]; error?: string };
          const list = Array.isArray(r.message) ? r.message : undefined;
          return {
            body: {
              statusCode: status,
              error: reason(status),
              message: list ? list.join('; ') : String(r.message ?? exception.message),
              ...(list ? { errors: list } : {}),
            },
          };
        }
        return { body: { statusCode: status, error: reason(status), message: String(res) } };
      }
      // A 5xx thrown on purpose (503 from a dependency, 501) keeps its status; its text may be internal.
      const body: ErrorBody = { statusCode: status, error: reason(status), message: `${reason(status)}; reference {id} in the server log` };
      this.log5xx(body, exception, 'error');
      return { body };
    }
    // Fastify's own client errors (malformed JSON, oversized body, wrong content type) carry a statusCode.
    const fastifyStatus = (exception as { statusCode?: number })?.statusCode;
    if (typeof fastifyStatus === 'number' && fastifyStatus >= 400 && fastifyStatus < 500) {
      return { body: { statusCode: fastifyStatus, error: reason(fastifyStatus), message: (exception as Error).message } };
    }
    const body: ErrorBody = { statusCode: 500, error: 'Internal Server Error', message: 'Internal error; reference {id} in the server log' };
    this.log5xx(body, exception, 'error');
    return { body };
  }

  /** Gives the body an errorId (also put into its message) and logs the cause under it. */
  private log5xx(body: ErrorBody, cause: unknown, level: 'error' | 'warn'): void {
    const errorId = randomUUID();
    body.errorId = errorId;
    body.message = body.message.replace('{id}', errorId);
    // An outage fails every request for a while: one line each, without a stack.
    const text = level === 'warn' ? String(cause instanceof Error ? cause.message : cause) : cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
    this.logger[level](`[${errorId}] ${body.statusCode} ${text}`);
  }
}
