import { Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { GatewayService, TAGS_HEADER, TASK_HEADER, USER_HEADER } from './gateway.service';
import { TAGS_RULES } from '../../common/usage-tags';

const ATTRIBUTION_HEADERS = [
  ApiHeader({ name: USER_HEADER, required: false, description: 'Admin keys only: the user the call is accounted to (a user key always accounts to its own user)' }),
  ApiHeader({ name: TASK_HEADER, required: false, description: 'Task id the call belongs to (1-64 letters, digits, . _ : -)' }),
  ApiHeader({ name: TAGS_HEADER, required: false, description: `Tags stored on the usage record and filterable in the usage API: ${TAGS_RULES}` }),
];
const OPENAI_BODY = ApiBody({ description: "OpenAI's request body, forwarded as it is (unknown fields kept)", schema: { type: 'object', additionalProperties: true } });

/**
 * OpenAI-compatible endpoints: point an OpenAI SDK's base URL at `/v1` with an asa-backend API
 * key. Bodies are taken as they are (no DTO: unknown fields must reach the upstream), and errors
 * come back in OpenAI's shape.
 */
@ApiTags('gateway')
@ApiBearerAuth()
@Controller('v1')
export class GatewayController {
  constructor(private readonly gateway: GatewayService) {}

  @Post('chat/completions')
  @HttpCode(200)
  @ApiOperation({ summary: 'Chat completion (plain or streamed), forwarded and accounted like any LLM call of the service' })
  @OPENAI_BODY_AND_HEADERS()
  chat(@Body() body: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply, @CurrentPrincipal() principal: Principal) {
    return this.gateway.forward('chat', body, req, reply, principal);
  }

  @Post('embeddings')
  @HttpCode(200)
  @ApiOperation({ summary: 'Embeddings, forwarded and accounted' })
  @OPENAI_BODY_AND_HEADERS()
  embeddings(@Body() body: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply, @CurrentPrincipal() principal: Principal) {
    return this.gateway.forward('embeddings', body, req, reply, principal);
  }

  @Post('responses')
  @HttpCode(200)
  @ApiOperation({ summary: 'Responses API (plain or streamed), forwarded and accounted' })
  @OPENAI_BODY_AND_HEADERS()
  responses(@Body() body: unknown, @Req() req: FastifyRequest, @Res() reply: FastifyReply, @CurrentPrincipal() principal: Principal) {
    return this.gateway.forward('responses', body, req, reply, principal);
  }

  @Get('models')
  @ApiOperation({ summary: 'Models this gateway routes: exact routes, and the lists of the upstreams behind wildcard routes' })
  async models() {
    return { object: 'list', data: await this.gateway.models() };
  }
}

function OPENAI_BODY_AND_HEADERS(): MethodDecorator {
  return (target, key, descriptor) => {
    for (const decorate of [OPENAI_BODY, ...ATTRIBUTION_HEADERS]) decorate(target, key, descriptor);
  };
}
