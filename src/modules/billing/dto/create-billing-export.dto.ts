import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsIn, IsString, MaxLength } from 'class-validator';
import { DEFAULT_GROUP_BY, GROUP_BY_VALUES, GroupBy } from '../billing-csv';

/** `group_by` as a list or a comma-separated string (`"user,model"`). */
export const toGroupList = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;

export class CreateBillingExportDto {
  @ApiProperty({
    description: 'Start of the period (inclusive): a date, midnight in BILLING_TIMEZONE, or an ISO 8601 timestamp',
    example: '2026-11-25',
  })
  @IsString({ message: 'from must be an ISO 8601 date (2026-11-25) or timestamp (2026-11-25T00:00:00Z)' })
  @MaxLength(40, { message: 'from must be an ISO 8601 date (2026-11-25) or timestamp (2026-11-25T00:00:00Z)' })
  from: string;

  @ApiProperty({
    description: 'End of the period (exclusive): a date, midnight in BILLING_TIMEZONE, or an ISO 8601 timestamp',
    example: '2026-11-26',
  })
  @IsString({ message: 'to must be an ISO 8601 date (2026-11-26) or timestamp (2026-11-26T00:00:00Z)' })
  @MaxLength(40, { message: 'to must be an ISO 8601 date (2026-11-26) or timestamp (2026-11-26T00:00:00Z)' })
  to: string;

  @ApiPropertyOptional({
    description: 'Group columns, in file order: any of user, model, task, day (a list or "user,model")',
    default: DEFAULT_GROUP_BY,
    isArray: true,
    enum: GROUP_BY_VALUES,
  })
  @Transform(toGroupList)
  @IsArray({ message: 'group_by must be a list of: user, model, task, day' })
  @ArrayMinSize(1, { message: 'group_by must name at least one of: user, model, task, day' })
  @ArrayMaxSize(4, { message: 'group_by may name each of user, model, task, day at most once' })
  @ArrayUnique({ message: 'group_by may name each of user, model, task, day at most once' })
  @IsIn(GROUP_BY_VALUES, { each: true, message: 'group_by must be a list of: user, model, task, day' })
  group_by: GroupBy[] = [...DEFAULT_GROUP_BY];
}
