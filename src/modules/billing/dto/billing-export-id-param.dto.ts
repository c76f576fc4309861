import { ApiProperty } from '@nestjs/swagger';
import { IsUUID } from 'class-validator';

export class BillingExportIdParamDto {
  @ApiProperty({ description: 'Export id (a UUID)', format: 'uuid' })
  @IsUUID('all', { message: 'id must be an export id (a UUID)' })
  id: string;
}
