import { Controller, Get, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { UsageLatencyQueryDto, UsageRecordsQueryDto } from './dto/usage-records-query.dto';
import { ErrorResponseDto } from './dto/usage-response.dto';
import { UsageLatencyDto, UsageRecordListDto } from './dto/usage-records-response.dto';
import { UsageRecordsService } from './usage-records.service';

/** Per-call reads (raw rows), apart from the aggregate usage API. */
@ApiTags('usage')
@ApiBearerAuth()
@ApiBadRequestResponse({ type: ErrorResponseDto, description: 'A parameter is invalid; the message names it' })
@ApiUnauthorizedResponse({ type: ErrorResponseDto, description: 'Missing or unknown API key' })
@ApiServiceUnavailableResponse({ type: ErrorResponseDto, description: 'The database is not available right now (code DATABASE_UNAVAILABLE); retry after Retry-After seconds' })
@Controller('api/v1/usage')
export class UsageRecordsController {
  constructor(private readonly records: UsageRecordsService) {}

  @Get('records')
  @ApiOperation({
    summary: 'Usage records, one per LLM call, newest first, filtered and paginated',
    description:
      'Keyset pagination: pass next_cursor as ?cursor= with the same filters for the next (older) page. ' +
      'A user-scope key sees only its own records (user_id naming another user is a 403).',
  })
  @ApiOkResponse({ type: UsageRecordListDto })
  @ApiForbiddenResponse({ type: ErrorResponseDto, description: "A user-scope key named another user's id" })
  list(@Query() query: UsageRecordsQueryDto, @CurrentPrincipal() principal: Principal): Promise<UsageRecordListDto> {
    return this.records.list(query, principal);
  }

  @Get('latency')
  @ApiOperation({
    summary: 'Median and 95th percentile latency of the LLM calls of the last N days (nearest rank)',
    description: 'A user-scope key gets the figures of its own calls.',
  })
  @ApiOkResponse({ type: UsageLatencyDto })
  latency(@Query() query: UsageLatencyQueryDto, @CurrentPrincipal() principal: Principal): Promise<UsageLatencyDto> {
    return this.records.latency(query.days, principal);
  }
}
