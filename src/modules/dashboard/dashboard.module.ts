import fastifyStatic from '@fastify/static';
import { Logger, Module, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where `npm run build` puts the built page: dist/dashboard beside dist/modules (the sources are in
 * the top-level dashboard/ folder). Running from the TypeScript sources there is none.
 */
export const DASHBOARD_ASSETS_DIR = join(__dirname, '..', '..', 'dashboard');

/**
 * The page reads only the public REST API, with the key the user types in; these static files hold
 * no data, so they are public (plain Fastify routes, as /docs is: the API-key guard never sees them).
 * The policy keeps the page from loading or sending anything anywhere but this service.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function securityHeaders(reply: FastifyReply): void {
  reply.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  reply.header('X-Content-Type-Options', 'nosniff');
  reply.header('Referrer-Policy', 'no-referrer');
}

@Module({})
export class DashboardModule implements OnModuleInit {
  private readonly logger = new Logger(DashboardModule.name);

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!adapter || adapter.getType() !== 'fastify') return;
    const fastify = adapter.getInstance<FastifyInstance>();
    const built = existsSync(join(DASHBOARD_ASSETS_DIR, 'index.html'));
    void fastify.register(async (scope) => {
      if (!built) {
        scope.get('/dashboard', async (_req, reply) =>
          reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'The dashboard is not built: run `npm run build` and start dist/main.js' }),
        );
        return;
      }
      await scope.register(fastifyStatic, {
        root: DASHBOARD_ASSETS_DIR,
        prefix: '/dashboard/',
        decorateReply: true,
        // Revalidated on each load (ETag / Last-Modified), so a new build shows at once.
        cacheControl: false,
        setHeaders: (reply) => {
          reply.header('Cache-Control', 'no-cache');
          securityHeaders(reply);
        },
      });
      scope.get('/dashboard', async (_req, reply) => {
        securityHeaders(reply);
        reply.header('Cache-Control', 'no-cache');
        return reply.sendFile('index.html');
      });
    });
    if (!built) this.logger.warn(`the dashboard is not built (no ${DASHBOARD_ASSETS_DIR}); /dashboard answers 404 until \`npm run build\``);
  }
}
