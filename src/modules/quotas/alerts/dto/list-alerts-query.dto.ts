import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { QueryNumber } from '../../../../common/query-number';
import { ALERT_KINDS, ALERT_STATES, AlertState } from '../entities/alert.entity';
import type { CostAlert } from '../../../../plugins/sdk';

export class ListAlertsQueryDto {
  @ApiPropertyOptional({ description: 'Only alerts of this quota rule id', example: 'alice-monthly' })
  @IsOptional() @IsString() @MaxLength(128, { message: 'rule must be a rule id of at most 128 characters' })
  rule?: string;

  @ApiPropertyOptional({ enum: ALERT_STATES })
  @IsOptional() @IsIn(ALERT_STATES, { message: `state must be one of: ${ALERT_STATES.join(', ')}` })
  state?: AlertState;

  @ApiPropertyOptional({ enum: ALERT_KINDS, description: 'quota_threshold (real alerts) or test (POST /api/v1/alerts/test)' })
  @IsOptional() @IsIn(ALERT_KINDS, { message: `kind must be one of: ${ALERT_KINDS.join(', ')}` })
  kind?: CostAlert['kind'];

  @ApiPropertyOptional({ default: 20, minimum: 1, maximum: 100 })
  @IsOptional() @QueryNumber({ integer: true, message: 'limit must be an integer from 1 to 100' }) @Min(1) @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page' })
  @IsOptional() @IsString() @MaxLength(200)
  cursor?: string;
}
