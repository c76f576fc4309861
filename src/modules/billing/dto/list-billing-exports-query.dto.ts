import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { QueryNumber } from '../../../common/query-number';

export class ListBillingExportsQueryDto {
  @ApiPropertyOptional({ default: 100, minimum: 1, maximum: 500 })
  @IsOptional() @QueryNumber({ integer: true, message: 'limit must be an integer from 1 to 500' }) @Min(1) @Max(500)
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page' })
  @IsOptional() @IsString() @MaxLength(200)
  cursor?: string;
}
