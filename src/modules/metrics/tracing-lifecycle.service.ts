import { Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { flushTracing, routeNamingHook } from './tracing';

/** Ties the process-wide OpenTelemetry SDK (started in main.ts) to the application's lifecycle. */
@Injectable()
export class TracingLifecycle implements OnModuleInit, OnApplicationShutdown {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    const hook = routeNamingHook();
    const fastify = this.adapterHost.httpAdapter?.getInstance?.() as FastifyInstance | undefined;
    if (!hook || typeof fastify?.addHook !== 'function') return;
    fastify.addHook('onRequest', (req, _reply, done) => {
      hook(req);
      done();
    });
  }

  /** Runs after the usage queues drained, so the spans of the final writes are exported too. */
  async onApplicationShutdown(): Promise<void> {
    await flushTracing();
  }
}
