import { Controller, Get, Headers, Query, Res, UnauthorizedException } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { NoQueryDto } from '../usage/dto/usage-query.dto';
import { authenticateRequest } from './api-key.guard';
import { ApiKeyService } from './api-key.service';
import { WhoamiDto } from './dto/whoami.dto';
import { LOCAL_ADMIN, Principal } from './principal';

const keyOf = (p: Principal) => ({ name: p.keyName, scope: p.scope, user_id: p.userId });

@ApiTags('auth')
@Controller('api/v1/auth')
export class AuthController {
  constructor(private readonly keys: ApiKeyService) {}

  /**
   * What a client (the dashboard) asks before any data: whether it needs a key, and whether the
   * one it holds is accepted, so it can ask for a key first instead of meeting 401s on its data.
   */
  // Public (the guard's PUBLIC_PATHS): it checks the key itself, and a missing key is no error here.
  @Get('whoami')
  @ApiOperation({
    summary: 'Whether the API needs a key, and which key was sent',
    description:
      'Public. Without an Authorization header: `api_keys_required` and `key: null` (200). With one: the key\'s name, scope and user, ' +
      'or 401 when the key is not accepted. Without configured keys every caller is the local admin.',
  })
  @ApiOkResponse({ type: WhoamiDto })
  @ApiUnauthorizedResponse({ description: 'The Authorization header is malformed or names an unknown key' })
  whoami(@Query() _query: NoQueryDto, @Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) reply: FastifyReply): WhoamiDto {
    if (!this.keys.hasKeys()) return { api_keys_required: false, key: keyOf(LOCAL_ADMIN) };
    if (authorization === undefined) return { api_keys_required: true, key: null };
    const result = authenticateRequest(this.keys, authorization);
    if ('principal' in result) return { api_keys_required: true, key: keyOf(result.principal) };
    reply.header('WWW-Authenticate', result.wwwAuthenticate);
    throw new UnauthorizedException(result.message);
  }
}
