import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';
import { negotiateFormat, renderMetrics } from './metrics-format';
import type { MetricsRegistry } from './metrics-registry.provider';
import { METRICS_REGISTRY } from './metrics.constants';

/** Serves this app's registry (not prom-client's global one) in the format the scraper asks for. */
@ApiTags('metrics')
@Controller()
export class MetricsController extends PrometheusController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: MetricsRegistry) {
    super();
  }

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'LLM requests, tokens, cost, latency, task outcomes, usage pipeline health and process metrics. ' +
      'OpenMetrics (with trace-id exemplars) when the Accept header asks for application/openmetrics-text, as Prometheus does; ' +
      'otherwise the classic text format 0.0.4.',
  })
  @ApiProduces('text/plain', 'application/openmetrics-text')
  @ApiOkResponse({ description: 'Metrics in the negotiated exposition format' })
  override async index(@Res({ passthrough: true }) reply: FastifyReply, @Headers('accept') accept?: string): Promise<string> {
    const { contentType, body } = await renderMetrics(this.registry, negotiateFormat(accept));
    reply.header('Content-Type', contentType);
    return body;
  }
}
