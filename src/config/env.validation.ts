import { plainToInstance, Transform } from 'class-transformer';
import { MAX_MODEL_NAME_LENGTH } from '../common/model-name';
import { relevantMessages } from '../common/validation-messages';
import {
  IsBoolean,
  IsDefined,
  IsEmpty,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsTimeZone,
  IsUrl,
  Matches,
  Max,
  Min,
  MaxLength,
  MinLength,
  NotEquals,
  ValidateIf,
  validateSync,
  ValidateBy,
} from 'class-validator';
import { hostAllowlistEntryProblem } from '../modules/tasks/repo-source/host-address';
import { CronTime } from 'cron';

/** The OPENAI_API_KEY value .env.example ships with: a copied file not yet edited, refused at start. */
export const ENV_EXAMPLE_API_KEY = 'sk-your-api-key-here';

const HTTP_URL = { require_tld: false, protocols: ['http', 'https'], require_protocol: true };
const EMAIL = /^[^\s@<>,]+@[^\s@<>,]+$/;
const EMAIL_LIST = /^\s*[^\s@<>,]+@[^\s@<>,]+(\s*,\s*[^\s@<>,]+@[^\s@<>,]+)*\s*$/;

const toBool = ({ value }: { value: unknown }) => {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'boolean') return value;
  const v = String(value).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value; // left as a string so IsBoolean reports it
};
/** A comma-separated TASK_REPO_HOST_ALLOWLIST: every entry a host name, an IP address or a CIDR range. */
const IsHostAllowlist = () =>
  ValidateBy({
    name: 'isHostAllowlist',
    validator: {
      validate: (value: unknown) =>
        typeof value === 'string' && value.split(',').every((e) => e.trim() === '' || hostAllowlistEntryProblem(e.trim()) === null),
      defaultMessage: (args) => {
        const bad = String(args?.value ?? '').split(',').map((e) => e.trim()).find((e) => e !== '' && hostAllowlistEntryProblem(e) !== null);
        return `TASK_REPO_HOST_ALLOWLIST must be a comma-separated list of host names, IP addresses and CIDR ranges: ${bad ? hostAllowlistEntryProblem(bad) : 'not a list'}`;
      },
    },
  });
/** OTLP exporter headers: `key=value,key2=value2` (W3C baggage-like, as the OpenTelemetry spec defines them). */
const OTLP_HEADERS = /^\s*([^=,\s]+\s*=[^,]*)(,\s*[^=,\s]+\s*=[^,]*)*\s*$/;

/** A cron expression (5 fields, or 6 with seconds) the scheduler accepts, or empty (= off). */
const IsCronOrEmpty = (variable: string) =>
  ValidateBy({
    name: 'isCronOrEmpty',
    validator: {
      validate: (value: unknown) => {
        if (typeof value !== 'string') return false;
        if (value.trim() === '') return true;
        try {
          new CronTime(value.trim());
          return true;
        } catch {
          return false;
        }
      },
      defaultMessage: () => `${variable} must be a cron expression such as "15 0 * * *" (minute hour day month weekday), or empty to turn the export off`,
    },
  });
const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value).trim()) ? Number(value) : value;

/**
 * Every environment variable the service reads. Validated once at boot; a bad value stops the
 * start with a message naming the variable. `.env.example` documents each one.
 */
export class EnvironmentVariables {
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(65535)
  PORT?: number;

  /** https://no-color.org: any non-empty value turns colour codes off in logs. */
  @IsOptional() @IsString()
  NO_COLOR?: string;

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
  @NotEquals(ENV_EXAMPLE_API_KEY, {
    message:
      `OPENAI_API_KEY is still the placeholder of .env.example: set your provider's API key (in .env or the environment), ` +
      'or try without one against the simulator: npm run simulator, then OPENAI_BASE_URL=http://127.0.0.1:8100/v1 OPENAI_API_KEY=sim',
  })
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

  @IsOptional() @IsIn(['refuse', 'allow'], { message: 'LLM_UNPRICED_UNDER_BUDGET must be refuse or allow' })
  LLM_UNPRICED_UNDER_BUDGET?: string;

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

  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'USAGE_JOURNAL must be on or off' })
  USAGE_JOURNAL?: boolean;

  @IsOptional() @IsIn(['disk', 'os'], { message: 'USAGE_JOURNAL_SYNC must be disk or os' })
  USAGE_JOURNAL_SYNC?: 'disk' | 'os';

  @IsOptional() @IsString() @Matches(/\S/, { message: 'USAGE_JOURNAL_DIR must be a folder path' })
  USAGE_JOURNAL_DIR?: string;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'USAGE_RAW_RETENTION_DAYS must be a whole number of days (unset keeps raw rows forever)' })
  @Min(1, { message: 'USAGE_RAW_RETENTION_DAYS must be at least 1 (unset keeps raw rows forever)' })
  @Max(36_500)
  USAGE_RAW_RETENTION_DAYS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000) @Max(86_400_000)
  USAGE_RETENTION_INTERVAL_MS?: number;

  @IsOptional() @IsString()
  API_KEYS_FILE?: string;

  @IsOptional() @Transform(toBool) @IsBoolean()
  METRICS_REQUIRE_AUTH?: boolean;

  @IsOptional() @Matches(/^(user)?$/, { message: 'METRICS_EXTRA_LABELS may only list: user' })
  METRICS_EXTRA_LABELS?: string;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'METRICS_MODEL_SERIES_TTL_HOURS must be a whole number of hours (0 keeps every series)' }) @Min(0) @Max(87_600)
  METRICS_MODEL_SERIES_TTL_HOURS?: number;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'METRICS_MAX_MODELS must be a whole number of models (0: no limit)' })
  @Min(0, { message: 'METRICS_MAX_MODELS must be a whole number of models (0: no limit)' })
  @Max(100_000, { message: 'METRICS_MAX_MODELS must be at most 100000 (each model adds 17 or more series; 0: no limit)' })
  METRICS_MAX_MODELS?: number;

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

  // OTLP usage sink (usage records as OpenTelemetry metrics and, optionally, log records).
  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'OTLP_USAGE_SINK must be true or false' })
  @ValidateBy({
    name: 'ownsMeterProvider',
    validator: {
      // Both would register the process-wide meter provider; nestjs-otel's instruments need the sink's.
      validate: (value: unknown, args) => {
        const env = args?.object as EnvironmentVariables;
        return !(value === true && env.ENABLE_OPENTELEMETRY === true && env.OTEL_METRICS_EXPORTER && env.OTEL_METRICS_EXPORTER !== 'none');
      },
      defaultMessage: () =>
        'OTLP_USAGE_SINK=true cannot be combined with OTEL_METRICS_EXPORTER when ENABLE_OPENTELEMETRY=true: unset OTEL_METRICS_EXPORTER (the usage sink exports its metrics over OTLP itself)',
    },
  })
  OTLP_USAGE_SINK?: boolean;

  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'OTLP_USAGE_LOGS must be true or false' })
  OTLP_USAGE_LOGS?: boolean;

  @IsOptional() @IsUrl(HTTP_URL, { message: 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT must be an http(s) URL, e.g. http://collector:4318/v1/metrics' })
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?: string;

  @IsOptional() @IsIn(['http/protobuf', 'http/json', 'grpc'], { message: 'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL must be one of: http/protobuf, http/json, grpc' })
  OTEL_EXPORTER_OTLP_METRICS_PROTOCOL?: string;

  @IsOptional() @Matches(OTLP_HEADERS, { message: 'OTEL_EXPORTER_OTLP_METRICS_HEADERS must be a comma-separated list of key=value pairs' })
  OTEL_EXPORTER_OTLP_METRICS_HEADERS?: string;

  @IsOptional() @IsUrl(HTTP_URL, { message: 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT must be an http(s) URL, e.g. http://collector:4318/v1/logs' })
  OTEL_EXPORTER_OTLP_LOGS_ENDPOINT?: string;

  @IsOptional() @IsIn(['http/protobuf', 'http/json', 'grpc'], { message: 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL must be one of: http/protobuf, http/json, grpc' })
  OTEL_EXPORTER_OTLP_LOGS_PROTOCOL?: string;

  @IsOptional() @Matches(OTLP_HEADERS, { message: 'OTEL_EXPORTER_OTLP_LOGS_HEADERS must be a comma-separated list of key=value pairs' })
  OTEL_EXPORTER_OTLP_LOGS_HEADERS?: string;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'OTEL_EXPORTER_OTLP_TIMEOUT must be a whole number of milliseconds' }) @Min(1) @Max(600_000)
  OTEL_EXPORTER_OTLP_TIMEOUT?: number;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'OTEL_EXPORTER_OTLP_METRICS_TIMEOUT must be a whole number of milliseconds' }) @Min(1) @Max(600_000)
  OTEL_EXPORTER_OTLP_METRICS_TIMEOUT?: number;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'OTEL_EXPORTER_OTLP_LOGS_TIMEOUT must be a whole number of milliseconds' }) @Min(1) @Max(600_000)
  OTEL_EXPORTER_OTLP_LOGS_TIMEOUT?: number;

  @IsOptional() @IsIn(['cumulative', 'delta', 'lowmemory'], {
    message: 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE must be one of: cumulative, delta, lowmemory',
  })
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE?: string;

  @IsOptional() @Transform(toInt) @IsInt({ message: 'OTEL_METRIC_EXPORT_INTERVAL must be a whole number of milliseconds' }) @Min(100) @Max(86_400_000)
  OTEL_METRIC_EXPORT_INTERVAL?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(64)
  TASK_CONCURRENCY?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(50) @Max(60_000)
  TASK_POLL_INTERVAL_MS?: number;

  @IsOptional() @IsString() @Matches(/^\S+$/, { message: 'TASK_DEFAULT_MODEL must be a model name without spaces' })
  @MaxLength(MAX_MODEL_NAME_LENGTH, { message: `TASK_DEFAULT_MODEL must be at most ${MAX_MODEL_NAME_LENGTH} characters` })
  TASK_DEFAULT_MODEL?: string;

  @IsOptional() @Transform(({ value }) => (value === undefined || value === '' ? undefined : /^\d+(\.\d+)?$/.test(String(value).trim()) ? Number(value) : value))
  @IsNumber({}, { message: 'TASK_MAX_COST_USD must be a non-negative number of USD, e.g. 1.50' }) @Min(0)
  TASK_MAX_COST_USD?: number;

  @IsOptional()
  @Matches(/^\s*(https|http|file|local|ssh|git)(\s*,\s*(https|http|file|local|ssh|git))*\s*$/, {
    message: 'TASK_REPO_URL_SCHEMES must be a comma-separated list of: https, http, file, local, ssh, git',
  })
  TASK_REPO_URL_SCHEMES?: string;

  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'TASK_ALLOW_LOCAL_REPOS_FOR_USERS must be true or false' })
  TASK_ALLOW_LOCAL_REPOS_FOR_USERS?: boolean;

  @IsOptional() @IsHostAllowlist()
  TASK_REPO_HOST_ALLOWLIST?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(0)
  TASK_SHUTDOWN_GRACE_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1_000) @Max(86_400_000)
  TASK_STALE_AFTER_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(7 * 86_400_000)
  TASK_RUN_TIMEOUT_MS?: number;

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

  @IsOptional() @IsIn(['bwrap', 'none'], {
    message: 'TASK_SANDBOX must be bwrap (test commands run in a bubblewrap sandbox; the default) or none (no isolation; only admin API keys may submit tasks)',
  })
  TASK_SANDBOX?: string;

  @IsOptional() @Transform(toBool) @IsBoolean({ message: 'TASK_SANDBOX_NETWORK must be true or false' })
  TASK_SANDBOX_NETWORK?: boolean;

  // Gateway (src/config/gateway.config.ts): routes of /v1 models to OpenAI-compatible upstreams.
  @IsOptional() @IsString()
  GATEWAY_FILE?: string;

  // Largest request body of a gateway call (src/common/body-limits.ts): 1 MiB to 256 MiB.
  @IsOptional() @Transform(toInt) @IsInt() @Min(1_048_576) @Max(268_435_456)
  GATEWAY_MAX_BODY_BYTES?: number;

  // Quotas (src/config/quotas.config.ts).
  @IsOptional() @IsString()
  QUOTAS_FILE?: string;

  @IsOptional() @IsTimeZone({ message: 'QUOTA_TIMEZONE must be an IANA time zone such as UTC or Europe/Paris' })
  QUOTA_TIMEZONE?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(86_400)
  QUOTA_EVALUATION_INTERVAL_S?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(86_400)
  QUOTA_RESERVATION_TTL_S?: number;
  // Alerts: delivery of cost alerts to notifiers (src/modules/quotas/alerts, src/plugins/notifiers).
  @IsOptional() @IsString()
  ALERT_NOTIFIER_PLUGINS?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(20)
  ALERT_DELIVERY_MAX_ATTEMPTS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(3_600_000)
  ALERT_DELIVERY_BACKOFF_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @Max(86_400_000)
  ALERT_DELIVERY_BACKOFF_MAX_MS?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(600_000)
  ALERT_DELIVERY_TIMEOUT_MS?: number;

  @IsOptional() @IsUrl(HTTP_URL, { message: 'SLACK_WEBHOOK_URL must be an http(s) URL (the Slack incoming-webhook URL)' })
  SLACK_WEBHOOK_URL?: string;

  @IsOptional() @IsString()
  @ValidateIf((env: EnvironmentVariables) => env.SLACK_WEBHOOK_URL !== undefined)
  @IsEmpty({ message: 'SLACK_WEBHOOK_URL_FILE and SLACK_WEBHOOK_URL are both set; set only one' })
  SLACK_WEBHOOK_URL_FILE?: string;

  @IsOptional() @Matches(/^smtps?:\/\/([^:@/\s]+@)?[^:@/\s]+(:\d{1,5})?\/?$/, {
    message: 'SMTP_URL must be smtp://[user@]host[:port] or smtps://... (the password goes in SMTP_PASSWORD_FILE, never in the URL)',
  })
  SMTP_URL?: string;

  @IsOptional() @IsString()
  SMTP_PASSWORD_FILE?: string;

  @ValidateIf((env: EnvironmentVariables) => env.SMTP_URL !== undefined || env.ALERT_EMAIL_FROM !== undefined)
  @IsDefined({ message: 'ALERT_EMAIL_FROM is required when SMTP_URL is set (the sender address of alert emails)' })
  @Matches(EMAIL, { message: 'ALERT_EMAIL_FROM must be an email address, e.g. asa-alerts@example.com' })
  ALERT_EMAIL_FROM?: string;

  @ValidateIf((env: EnvironmentVariables) => env.SMTP_URL !== undefined || env.ALERT_EMAIL_TO !== undefined)
  @IsDefined({ message: 'ALERT_EMAIL_TO is required when SMTP_URL is set (comma-separated recipient addresses)' })
  @Matches(EMAIL_LIST, { message: 'ALERT_EMAIL_TO must be a comma-separated list of email addresses' })
  ALERT_EMAIL_TO?: string;

  @IsOptional() @IsUrl(HTTP_URL, { message: 'ALERTMANAGER_URL must be an http(s) URL, e.g. http://alertmanager:9093' })
  ALERTMANAGER_URL?: string;

  @IsOptional() @IsUrl(HTTP_URL, { message: 'ALERT_WEBHOOK_URL must be an http(s) URL' })
  ALERT_WEBHOOK_URL?: string;

  @ValidateIf((env: EnvironmentVariables) => env.ALERT_WEBHOOK_URL !== undefined || env.ALERT_WEBHOOK_SECRET !== undefined)
  @IsDefined({ message: 'ALERT_WEBHOOK_SECRET is required when ALERT_WEBHOOK_URL is set (the HMAC key receivers verify signatures with)' })
  @IsString() @MinLength(16, { message: 'ALERT_WEBHOOK_SECRET must be at least 16 characters' })
  ALERT_WEBHOOK_SECRET?: string;

  // Billing exports (src/config/billing.config.ts).
  @IsOptional() @IsTimeZone({ message: 'BILLING_TIMEZONE must be an IANA time zone such as UTC or America/Los_Angeles' })
  BILLING_TIMEZONE?: string;

  @IsOptional() @IsCronOrEmpty('BILLING_DAILY_CRON')
  BILLING_DAILY_CRON?: string;

  @IsOptional() @IsCronOrEmpty('BILLING_MONTHLY_CRON')
  BILLING_MONTHLY_CRON?: string;

  @IsOptional() @IsString() @Matches(/\S/, { message: 'BILLING_EXPORT_DIR must be a folder path' })
  BILLING_EXPORT_DIR?: string;

  @IsOptional() @IsString()
  BILLING_EXPORT_DESTINATION_PLUGINS?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(3_600_000)
  BILLING_EXPORT_DELIVERY_TIMEOUT_MS?: number;

  // Plugins (src/config/plugins.config.ts): per-plugin options, load checks.
  @IsOptional() @IsString()
  PLUGINS_FILE?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @Max(600_000)
  PLUGIN_LOAD_TIMEOUT_MS?: number;

  @IsOptional() @IsString()
  TASK_AGENT_PLUGINS?: string;
}

/** Values never echoed in a validation error (they are, or contain, credentials). */
const SECRET_VARIABLES = new Set([
  'OPENAI_API_KEY', 'SLACK_WEBHOOK_URL', 'ALERT_WEBHOOK_URL', 'ALERT_WEBHOOK_SECRET', 'SMTP_URL',
  // OTLP headers usually carry the collector's API key or bearer token.
  'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_METRICS_HEADERS', 'OTEL_EXPORTER_OTLP_LOGS_HEADERS',
]);

export function validateEnv(config: Record<string, unknown>): EnvironmentVariables {
  const validated = plainToInstance(EnvironmentVariables, config, { enableImplicitConversion: false });
  const errors = validateSync(validated, { skipMissingProperties: false, whitelist: false });
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const msgs = relevantMessages(e.constraints).join('; ');
      const shown = SECRET_VARIABLES.has(e.property) ? '(hidden)' : JSON.stringify(e.value);
      return `  ${e.property}=${shown}: ${msgs}`;
    });
    throw new Error(`Invalid environment configuration:\n${lines.join('\n')}`);
  }
  return validated;
}
