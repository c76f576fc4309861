import { ApiProperty } from '@nestjs/swagger';

export class WhoamiKeyDto {
  @ApiProperty({ description: 'Name of the API key (`local` when no keys are configured)', example: 'alice-laptop' })
  name: string;
  @ApiProperty({ enum: ['admin', 'user'] })
  scope: 'admin' | 'user';
  @ApiProperty({ nullable: true, type: String, description: 'The user a user-scope key belongs to; null for admin keys' })
  user_id: string | null;
}

export class WhoamiDto {
  @ApiProperty({ description: 'Whether the API needs a key (API keys are configured)' })
  api_keys_required: boolean;
  @ApiProperty({ type: WhoamiKeyDto, nullable: true, description: 'The key that was sent; null when none was (and one is required)' })
  key: WhoamiKeyDto | null;
}
