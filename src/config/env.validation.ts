import { plainToInstance, Transform } from 'class-transformer';
import { relevantMessages } from '../common/validation-messages';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  validateSync,
} from 'class-validator';

const toBool = ({ value }: { value: unknown }) => {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  const v = String(value).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value; // left as a string so IsBoolean reports it
};
const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value).trim()) ? Number(value) : value;

/**
 * Every environment variable the service reads. Validated once at boot; a bad value stops the
 * start with a message naming the variable. `.env.example` documents each one.
 */
export class EnvironmentVariables {
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  PORT?: number;

  @IsOptional() @IsString()
  HOST?: string;

  @IsOptional() @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @IsOptional() @IsIn(['pretty', 'json'])
  LOG_FORMAT?: string;

  @IsOptional()
  @Matches(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, {
    message: 'DATABASE_URL must be sqlite:<path> or postgres://user@host:port/db',
  })
  DATABASE_URL?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(600_000)
  SQLITE_BUSY_TIMEOUT_MS?: number;

  @IsOptional() @IsString()
  OPENAI_API_KEY?: string;

  @IsOptional() @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  OPENAI_BASE_URL?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100)
  OPENAI_TIMEOUT_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(10)
  OPENAI_MAX_RETRIES?: number;

  @IsOptional() @Matches(/^[a-z0-9][a-z0-9_-]*$/, { message: 'LLM_PROVIDER must be a provider id such as openai' })
  LLM_PROVIDER?: string;

  @IsOptional() @IsString()
  PRICING_FILE?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(100_000)
  USAGE_BATCH_SIZE?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(60_000)
  USAGE_FLUSH_INTERVAL_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(10_000_000)
  USAGE_QUEUE_CAPACITY?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  SHUTDOWN_DRAIN_TIMEOUT_MS?: number;

  @IsOptional() @IsString()
  USAGE_SINK_PLUGINS?: string;

  @IsOptional() @IsString()
  API_KEYS_FILE?: string;

  @IsOptional() @Transform(toBool) @IsBoolean()
  METRICS_REQUIRE_AUTH?: boolean;

  @IsOptional() @Matches(/^(user)?$/, { message: 'METRICS_EXTRA_LABELS may only list: user' })
  METRICS_EXTRA_LABELS?: string;

  @IsOptional() @Transform(toBool) @IsBoolean()
  ENABLE_OPENTELEMETRY?: boolean;

  // Standard OpenTelemetry variables, read by the SDK; validated here so a typo stops the start.
  @IsOptional() @IsString()
  OTEL_SERVICE_NAME?: string;

  @IsOptional() @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;

  @IsOptional() @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string;

  @IsOptional() @IsIn(['http/protobuf', 'http/json', 'grpc'])
  OTEL_EXPORTER_OTLP_PROTOCOL?: string;

  @IsOptional() @IsIn(['http/protobuf', 'http/json', 'grpc'])
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?: string;

  @IsOptional() @Matches(/^\s*([^=,\s]+\s*=[^,]*)(,\s*[^=,\s]+\s*=[^,]*)*\s*$/, {
    message: 'OTEL_EXPORTER_OTLP_HEADERS must be a comma-separated list of key=value pairs',
  })
  OTEL_EXPORTER_OTLP_HEADERS?: string;

  @IsOptional() @Matches(/^(none|otlp|console|prometheus)(,(none|otlp|console|prometheus))*$/, {
    message: 'OTEL_METRICS_EXPORTER must list exporters from: otlp, console, prometheus, none',
  })
  OTEL_METRICS_EXPORTER?: string;

  @IsOptional() @Matches(/^(none|otlp|console)(,(none|otlp|console))*$/, {
    message: 'OTEL_LOGS_EXPORTER must list exporters from: otlp, console, none',
  })
  OTEL_LOGS_EXPORTER?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(64)
  TASK_CONCURRENCY?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(50) @Max(60_000)
  TASK_POLL_INTERVAL_MS?: number;

  @IsOptional() @IsString() @Matches(/^\S+$/, { message: 'TASK_DEFAULT_MODEL must be a model name without spaces' })
  TASK_DEFAULT_MODEL?: string;

  @IsOptional() @Transform(({ value }) => (value === undefined || value === '' ? undefined : /^\d+(\.\d+)?$/.test(String(value).trim()) ? Number(value) : value))
  @IsNumber({}, { message: 'TASK_MAX_COST_USD must be a non-negative number of USD, e.g. 1.50' }) @Min(0)
  TASK_MAX_COST_USD?: number;

  @IsOptional()
  @Matches(/^\s*(https|http|file|local|ssh|git)(\s*,\s*(https|http|file|local|ssh|git))*\s*$/, {
    message: 'TASK_REPO_URL_SCHEMES must be a comma-separated list of: https, http, file, local, ssh, git',
  })
  TASK_REPO_URL_SCHEMES?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  TASK_SHUTDOWN_GRACE_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000) @Max(86_400_000)
  TASK_STALE_AFTER_MS?: number;

  // Bug-fix agent: workspace, context budget and the test command sandbox.
  @IsOptional() @IsString()
  TASK_WORKSPACE_DIR?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000)
  TASK_CLONE_TIMEOUT_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100)
  TASK_TEST_TIMEOUT_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(60_000)
  TASK_KILL_GRACE_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_024) @Max(64 * 1024 * 1024)
  TASK_TEST_OUTPUT_MAX_BYTES?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000) @Max(2_000_000)
  TASK_CONTEXT_MAX_TOKENS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_024)
  TASK_CONTEXT_MAX_FILE_BYTES?: number;

  @IsOptional() @Matches(/^\s*([A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)?\s*$/, {
    message: 'TASK_TEST_ENV_PASSTHROUGH must be a comma-separated list of environment variable names',
  })
  TASK_TEST_ENV_PASSTHROUGH?: string;
}

export function validateEnv(config: Record<string, unknown>): EnvironmentVariables {
  const validated = plainToInstance(EnvironmentVariables, config, { enableImplicitConversion: false });
  const errors = validateSync(validated, { skipMissingProperties: false, whitelist: false });
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const msgs = relevantMessages(e.constraints).join('; ');
      return `  ${e.property}=${JSON.stringify(e.value)}: ${msgs}`;
    });
    throw new Error(`Invalid environment configuration:\n${lines.join('\n')}`);
  }
  return validated;
}
