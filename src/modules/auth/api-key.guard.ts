import { CanActivate, ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { authConfig } from '../../config/auth.config';
import { ADMIN_ONLY_KEY } from './admin-only.decorator';
import { ApiKeyService } from './api-key.service';
import { LOCAL_ADMIN, Principal, PRINCIPAL_REQUEST_KEY } from './principal';

/** Liveness probes must work without credentials; whoami checks the key it is sent itself. */
const PUBLIC_PATHS = new Set(['/health', '/api/v1/auth/whoami']);
/** Served by the Prometheus module's controller; public unless METRICS_REQUIRE_AUTH=true (then admin only). */
const METRICS_PATH = '/metrics';

/** Path of the request without the query string (the route pattern when Fastify matched one). */
export function requestPath(req: FastifyRequest): string {
  return req.routeOptions?.url ?? req.url.split('?')[0];
}

/**
 * Global guard (APP_GUARD): every Nest route needs `Authorization: Bearer <key>` except the
 * public ones; the principal is stored on the request for `@CurrentPrincipal()`.
 * Without configured keys every request is the local admin.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly reflector: Reflector,
    @Inject(authConfig.KEY) private readonly config: ConfigType<typeof authConfig>,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const http = context.switchToHttp();
    const req = http.getRequest<FastifyRequest & Record<string, unknown>>();
    const path = requestPath(req);
    if (PUBLIC_PATHS.has(path)) return true;
    const isMetrics = path === METRICS_PATH;
    if (isMetrics && !this.config.metricsRequireAuth) return true;

    const principal = this.keys.hasKeys() ? this.authenticate(req, http.getResponse<FastifyReply>()) : LOCAL_ADMIN;
    req[PRINCIPAL_REQUEST_KEY] = principal;
    const adminOnly =
      isMetrics || this.reflector.getAllAndOverride<boolean>(ADMIN_ONLY_KEY, [context.getHandler(), context.getClass()]);
    if (adminOnly && principal.scope !== 'admin') {
      throw new ForbiddenException(`API key "${principal.keyName}" has scope "user"; this endpoint needs an admin key`);
    }
    return true;
  }

  private authenticate(req: FastifyRequest, reply: FastifyReply): Principal {
    const result = authenticateRequest(this.keys, req.headers.authorization);
    if ('principal' in result) return result.principal;
    reply.header('WWW-Authenticate', result.wwwAuthenticate);
    throw new UnauthorizedException(result.message);
  }
}

export type AuthResult = { principal: Principal } | { message: string; wwwAuthenticate: string };

/** Shared by the guard and the Fastify hook that protects /docs. */
export function authenticateRequest(keys: ApiKeyService, header: string | undefined): AuthResult {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  if (!match) {
    return {
      message: header ? 'Authorization header must be "Bearer <API key>"' : 'Missing API key: send "Authorization: Bearer <API key>"',
      wwwAuthenticate: 'Bearer realm="asa-backend"',
    };
  }
  const principal = keys.authenticate(match[1]);
  if (!principal) {
    return {
      message: 'Unknown API key',
      wwwAuthenticate: 'Bearer realm="asa-backend", error="invalid_token"',
    };
  }
  return { principal };
}
