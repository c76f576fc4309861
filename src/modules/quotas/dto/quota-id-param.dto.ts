import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';

export class QuotaIdParamDto {
  @ApiProperty({ description: 'Rule id (1-64 letters, digits, . _ -)', example: 'alice-monthly' })
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: 'id must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit' })
  id: string;
}
