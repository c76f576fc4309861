import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { gatewayConfig } from '../../config/gateway.config';
import { GatewayTaskOwners } from './gateway-task-owners.service';
import { GatewayUpstreams } from './gateway-upstreams.service';
import { GatewayController } from './gateway.controller';
import { GatewayService } from './gateway.service';

/** OpenAI-compatible /v1 endpoints over the service's LlmClient (admission, pricing, usage records). */
@Module({
  imports: [ConfigModule.forFeature(gatewayConfig)],
  controllers: [GatewayController],
  providers: [GatewayUpstreams, GatewayTaskOwners, GatewayService],
})
export class GatewayModule {}
