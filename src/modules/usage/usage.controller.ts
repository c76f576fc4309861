import { Controller, Get, Param, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiExtraModels,
  ApiForbiddenResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
  ApiServiceUnavailableResponse,
} from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { NoQueryDto, TaskIdParamDto, TimeseriesQueryDto, UsageWindowQueryDto, UserIdParamDto } from './dto/usage-query.dto';
import {
  ErrorResponseDto,
  OverallUsageDto,
  TaskUsageDto,
  TimeseriesDto,
  UsageBreakdownDto,
  UserUsageDto,
} from './dto/usage-response.dto';
import { UsageQueryService } from './usage-query.service';
import { parseUsageTags, UsageTags } from '../../common/usage-tags';

/** The validated `?tags=` filter, or null. */
const tagsFilter = (query: UsageWindowQueryDto): UsageTags | null => (query.tags === undefined ? null : parseUsageTags(query.tags));

@ApiTags('usage')
@ApiBearerAuth()
@ApiExtraModels(UsageBreakdownDto)
@ApiBadRequestResponse({ type: ErrorResponseDto, description: 'A parameter is invalid; the message names it' })
@ApiUnauthorizedResponse({ type: ErrorResponseDto, description: 'Missing or unknown API key' })
@ApiForbiddenResponse({ type: ErrorResponseDto, description: "A user-scope key asked for another user's data" })
@ApiServiceUnavailableResponse({ type: ErrorResponseDto, description: 'The database is not available right now (code DATABASE_UNAVAILABLE); retry after Retry-After seconds' })
@Controller('api/v1/usage')
export class UsageController {
  constructor(private readonly usage: UsageQueryService) {}

  @Get('task/:task_id')
  @ApiOperation({ summary: 'LLM usage of one task: requests, tokens, exact cost, latency, per model' })
  @ApiOkResponse({ type: TaskUsageDto })
  @ApiNotFoundResponse({ type: ErrorResponseDto, description: 'No usage recorded for this task id' })
  task(@Param() params: TaskIdParamDto, @Query() _query: NoQueryDto, @CurrentPrincipal() principal: Principal) {
    return this.usage.taskUsage(params.task_id, principal);
  }

  @Get('overall')
  @ApiOperation({
    summary: 'Usage over the last N days, per model and per user',
    description: 'A user-scope key sees only its own calls here (totals, by_model and by_user are filtered to its user).',
  })
  @ApiOkResponse({ type: OverallUsageDto })
  overall(@Query() query: UsageWindowQueryDto, @CurrentPrincipal() principal: Principal) {
    return this.usage.overallUsage(query.days, principal, tagsFilter(query));
  }

  @Get('user/:user_id')
  @ApiOperation({ summary: 'Usage of one user over the last N days, per model' })
  @ApiOkResponse({ type: UserUsageDto })
  user(@Param() params: UserIdParamDto, @Query() query: UsageWindowQueryDto, @CurrentPrincipal() principal: Principal) {
    return this.usage.userUsage(params.user_id, query.days, principal, tagsFilter(query));
  }

  @Get('timeseries')
  @ApiOperation({
    summary: 'Usage over time in hourly or daily UTC buckets, per model or per user (for plotting)',
    description: 'A user-scope key sees only its own calls here. Buckets without calls are left out.',
  })
  @ApiOkResponse({ type: TimeseriesDto })
  timeseries(@Query() query: TimeseriesQueryDto, @CurrentPrincipal() principal: Principal) {
    return this.usage.timeseries(query.days, query.interval, query.group_by, principal, tagsFilter(query));
  }
}
