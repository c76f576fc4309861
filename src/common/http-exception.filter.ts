import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { DomainException } from './domain.exception';

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
  /** Present on 5xx responses; the same id is in the server log. */
  errorId?: string;
}

/** Maps domain exceptions and Nest's HTTP exceptions to JSON; logs every 5xx with an id. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const { httpAdapter } = this.adapterHost;
    const ctx = host.switchToHttp();
    const body = this.toBody(exception);
    httpAdapter.reply(ctx.getResponse(), body, body.statusCode);
  }

  private toBody(exception: unknown): ErrorBody {
    if (exception instanceof DomainException) {
      return { statusCode: exception.status, error: reason(exception.status), code: exception.code, message: exception.message };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const res = exception.getResponse();
      if (status < 500) {
        if (typeof res === 'object' && res !== null) {
          const r = res as { message?: string | string[]; error?: string };
          const list = Array.isArray(r.message) ? r.message : undefined;
          return {
            statusCode: status,
            error: reason(status),
            message: list ? list.join('; ') : String(r.message ?? exception.message),
            ...(list ? { errors: list } : {}),
          };
        }
        return { statusCode: status, error: reason(status), message: String(res) };
      }
    }
    // Fastify's own client errors (malformed JSON, oversized body, wrong content type) carry a statusCode.
    const fastifyStatus = (exception as { statusCode?: number })?.statusCode;
    if (typeof fastifyStatus === 'number' && fastifyStatus >= 400 && fastifyStatus < 500) {
      return { statusCode: fastifyStatus, error: reason(fastifyStatus), message: (exception as Error).message };
    }
    const errorId = randomUUID();
    this.logger.error(`[${errorId}] ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`);
    return { statusCode: 500, error: 'Internal Server Error', message: `Internal error; reference ${errorId} in the server log`, errorId };
  }
}
