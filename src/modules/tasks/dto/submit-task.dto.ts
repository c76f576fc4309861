import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsNumber, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { USER_ID_PATTERN } from '../../auth/api-key-file';
import { MAX_MODEL_NAME_LENGTH } from '../../../common/model-name';

// The same user id rule as API keys and the usage API.
export const USER_ID_MESSAGE = 'user_id must be 1-100 characters of letters, digits and . _ : @ -';

export class SubmitTaskDto {
  @ApiProperty({
    description:
      'Repository to fix: an https://, http:// or file:// URL or an absolute local path (kinds allowed by TASK_REPO_URL_SCHEMES). ' +
      'User-scoped API keys may use only https:// unless TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true (403 otherwise). ' +
      'Loopback, private, link-local and metadata hosts are refused unless listed in TASK_REPO_HOST_ALLOWLIST (checked at submit ' +
      'for address literals and localhost, and again after name resolution at clone time); local paths into the service\'s own ' +
      'folder, /proc, /sys or /dev are refused for every key. ' +
      'Values starting with "-", git remote-helper transports (ext::...), whitespace and embedded credentials are rejected.',
    example: 'https://github.com/example/repo',
    maxLength: 2048,
  })
  @IsString() @IsNotEmpty() @MaxLength(2048)
  repo_url: string;

  @ApiProperty({ description: 'What is wrong, in words; given to the model.', example: 'Fix the authentication bug', maxLength: 20_000 })
  @IsString() @IsNotEmpty() @MaxLength(20_000)
  bug_description: string;

  @ApiProperty({
    description: 'Shell command that runs the tests in the repository; exit code 0 means fixed.',
    example: 'pytest tests/',
    maxLength: 2_000,
  })
  @IsString() @IsNotEmpty() @MaxLength(2_000)
  test_command: string;

  @ApiPropertyOptional({ description: 'User the task (and its LLM usage) belongs to. Forced to the key\'s user for user-scoped API keys.', example: 'user-123' })
  @IsOptional() @IsString() @Matches(USER_ID_PATTERN, { message: USER_ID_MESSAGE })
  user_id?: string;

  @ApiPropertyOptional({ description: 'Model to use (default TASK_DEFAULT_MODEL).', example: 'gpt-4o-mini' })
  @IsOptional() @IsString() @Matches(new RegExp(`^[A-Za-z0-9._:/@-]{1,${MAX_MODEL_NAME_LENGTH}}$`), { message: `model must be a model name of 1-${MAX_MODEL_NAME_LENGTH} characters without spaces` })
  model?: string;

  @ApiPropertyOptional({ description: 'Budget of the task in USD (default TASK_MAX_COST_USD). The agent stops with budget_exceeded before a call that would pass it.', example: 0.5 })
  // No maxDecimalPlaces: class-validator throws on exponent notation (1e-12); amounts are rounded to the nano-dollar instead.
  @IsOptional() @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'max_cost_usd must be a number of USD' })
  @Min(0.000000001, { message: 'max_cost_usd must be at least 0.000000001 (one nano-dollar)' }) @Max(1_000_000)
  max_cost_usd?: number;

  @ApiPropertyOptional({ description: 'Fix attempts (model call + apply + test) before giving up.', default: 3, minimum: 1, maximum: 10 })
  @IsOptional() @IsInt() @Min(1) @Max(10)
  max_attempts?: number;

  @ApiPropertyOptional({
    description: 'Task agent to run the task: a built-in or one loaded from TASK_AGENT_PLUGINS (GET /api/v1/plugins lists them). Default: the built-in bug-fix agent.',
    example: 'bug-fix',
  })
  @IsOptional() @IsString() @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: 'agent must be an agent name: 1-64 characters of a-z, 0-9, _ and -' })
  agent?: string;
}

export class SubmitTaskResponseDto {
  @ApiProperty({ example: '0b8f5c2e-4f7a-4d55-9a55-2f1e7c9b1a10' })
  task_id: string;

  @ApiProperty({ example: 'queued', enum: ['queued'] })
  status: 'queued';
}
