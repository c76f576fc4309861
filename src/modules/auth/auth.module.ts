import { Global, Module, OnModuleInit } from '@nestjs/common';
import { APP_GUARD, HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { ApiKeyGuard, authenticateRequest } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { AuthController } from './auth.controller';

@Global()
@Module({
  controllers: [AuthController],
  providers: [ApiKeyService, { provide: APP_GUARD, useClass: ApiKeyGuard }],
  exports: [ApiKeyService],
})
export class AuthModule implements OnModuleInit {
  constructor(
    private readonly keys: ApiKeyService,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * Swagger's /docs routes are plain Fastify routes that Nest guards never see, so they get a
   * Fastify hook instead: with keys configured, /docs and /docs-json need any valid key.
   */
  onModuleInit(): void {
    const adapter = this.adapterHost?.httpAdapter;
    if (!this.keys.hasKeys() || !adapter || adapter.getType() !== 'fastify') return;
    const fastify = adapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?')[0];
      if (path !== '/docs' && !path.startsWith('/docs/') && !path.startsWith('/docs-')) return;
      const result = authenticateRequest(this.keys, req.headers.authorization);
      if ('principal' in result) return;
      await reply
        .code(401)
        .header('WWW-Authenticate', result.wwwAuthenticate)
        .send({ statusCode: 401, error: 'Unauthorized', message: result.message });
    });
  }
}
