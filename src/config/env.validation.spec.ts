import { tasksConfig } from './tasks.config';
import { parseDatabaseUrl } from './database.config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV_EXAMPLE_API_KEY, validateEnv } from './env.validation';
import { defaultJournalDir } from './usage.config';

describe('validateEnv', () => {
  it('accepts an empty environment (every variable has a default)', () => {
    expect(() => validateEnv({})).not.toThrow();
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['OPENAI_BASE_URL', 'not a url'],
    ['ENABLE_OPENTELEMETRY', 'maybe'],
    ['USAGE_FLUSH_INTERVAL_MS', '-5'],
    ['TASK_SANDBOX', 'docker'],
    ['TASK_SANDBOX_NETWORK', 'maybe'],
    ['GATEWAY_MAX_BODY_BYTES', '1000'],
    ['GATEWAY_MAX_BODY_BYTES', '20MB'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => validateEnv({ [name]: value })).toThrow(new RegExp(`\\b${name}=`));
  });

  it('reports what kind of value is expected, not the range, when the kind is wrong', () => {
    expect(() => validateEnv({ PORT: 'eighty' })).toThrow(/PORT="eighty": PORT must be an integer number$/m);
    expect(() => validateEnv({ PORT: '70000' })).toThrow(/PORT=70000: PORT must not be greater than 65535$/m);
  });

  it('refuses the placeholder key of .env.example, naming the variable but not echoing it, and saying what to do', () => {
    const example = readFileSync(join(__dirname, '../../.env.example'), 'utf8');
    expect(example).toContain(`\nOPENAI_API_KEY=${ENV_EXAMPLE_API_KEY}\n`);
    expect(() => validateEnv({ OPENAI_API_KEY: ENV_EXAMPLE_API_KEY })).toThrow(
      /^ {2}OPENAI_API_KEY=\(hidden\): OPENAI_API_KEY is still the placeholder of \.env\.example: set your provider's API key.*npm run simulator/m,
    );
    expect(() => validateEnv({ OPENAI_API_KEY: 'sk-a-real-looking-key' })).not.toThrow();
  });

  it('parses booleans and integers', () => {
    const env = validateEnv({ PORT: '8123', ENABLE_OPENTELEMETRY: 'true' });
    expect(env.PORT).toBe(8123);
    expect(env.ENABLE_OPENTELEMETRY).toBe(true);
  });
});

describe('parseDatabaseUrl', () => {
  it('defaults to a SQLite file under data/', () => {
    expect(parseDatabaseUrl(undefined)).toEqual({ type: 'sqlite', path: `${process.cwd()}/data/asa.db` });
  });
  it('reads sqlite: forms and postgres URLs', () => {
    expect(parseDatabaseUrl('sqlite:///tmp/x.db')).toEqual({ type: 'sqlite', path: '/tmp/x.db' });
    expect(parseDatabaseUrl('sqlite:rel/x.db')).toEqual({ type: 'sqlite', path: `${process.cwd()}/rel/x.db` });
    expect(parseDatabaseUrl('postgres://u@h:5432/d')).toEqual({ type: 'postgres', url: 'postgres://u@h:5432/d' });
  });
});

describe('repository source variables', () => {
  it('reads TASK_ALLOW_LOCAL_REPOS_FOR_USERS as a boolean and names it when it is not one', () => {
    expect(validateEnv({ TASK_ALLOW_LOCAL_REPOS_FOR_USERS: 'true' }).TASK_ALLOW_LOCAL_REPOS_FOR_USERS).toBe(true);
    expect(validateEnv({ TASK_ALLOW_LOCAL_REPOS_FOR_USERS: 'false' }).TASK_ALLOW_LOCAL_REPOS_FOR_USERS).toBe(false);
    expect(() => validateEnv({ TASK_ALLOW_LOCAL_REPOS_FOR_USERS: 'sometimes' })).toThrow(
      /TASK_ALLOW_LOCAL_REPOS_FOR_USERS="sometimes": TASK_ALLOW_LOCAL_REPOS_FOR_USERS must be true or false/,
    );
  });

  it('accepts host names, addresses and CIDR ranges in TASK_REPO_HOST_ALLOWLIST', () => {
    expect(() => validateEnv({ TASK_REPO_HOST_ALLOWLIST: 'git.corp.example, 10.0.0.0/8,192.168.1.5,fd00::/8,[::1],' })).not.toThrow();
  });

  it.each([
    ['10.0.0.0/40', '"10.0.0.0/40" is not a host name, an IP address or a CIDR range'],
    ['git.corp.example,https://git.corp.example', '"https://git.corp.example" is not a host name'],
    ['two words', '"two words" is not a host name'],
  ])('names TASK_REPO_HOST_ALLOWLIST and the bad entry in %j', (value, message) => {
    expect(() => validateEnv({ TASK_REPO_HOST_ALLOWLIST: value })).toThrow(/TASK_REPO_HOST_ALLOWLIST=.*TASK_REPO_HOST_ALLOWLIST must be a comma-separated list/);
    expect(() => validateEnv({ TASK_REPO_HOST_ALLOWLIST: value })).toThrow(message);
  });
});

describe('usage journal settings', () => {
  it('reads USAGE_JOURNAL_SYNC as disk or os and names it when it is neither', () => {
    expect(validateEnv({ USAGE_JOURNAL_SYNC: 'os' }).USAGE_JOURNAL_SYNC).toBe('os');
    expect(validateEnv({}).USAGE_JOURNAL_SYNC).toBeUndefined();
    expect(() => validateEnv({ USAGE_JOURNAL_SYNC: 'never' })).toThrow(/USAGE_JOURNAL_SYNC="never": USAGE_JOURNAL_SYNC must be disk or os/);
  });

  it('reads USAGE_JOURNAL as on/off and names it when it is neither', () => {
    expect(validateEnv({ USAGE_JOURNAL: 'off' }).USAGE_JOURNAL).toBe(false);
    expect(validateEnv({ USAGE_JOURNAL: 'on' }).USAGE_JOURNAL).toBe(true);
    expect(() => validateEnv({ USAGE_JOURNAL: 'sometimes' })).toThrow(/USAGE_JOURNAL="sometimes": USAGE_JOURNAL must be on or off/);
  });

  it('puts the journal beside a SQLite file, and in data/journal for PostgreSQL', () => {
    expect(defaultJournalDir('sqlite:/tmp/x.db')).toBe('/tmp/x.db.usage-journal');
    expect(defaultJournalDir(undefined)).toBe(`${process.cwd()}/data/asa.db.usage-journal`);
    expect(defaultJournalDir('postgres://u@h:5432/d')).toBe(`${process.cwd()}/data/journal`);
  });
});

describe('OTLP usage sink settings', () => {
  it.each([
    ['OTLP_USAGE_SINK', 'maybe', 'OTLP_USAGE_SINK must be true or false'],
    ['OTLP_USAGE_LOGS', 'sometimes', 'OTLP_USAGE_LOGS must be true or false'],
    ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT', 'collector:4318', 'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT must be an http(s) URL'],
    ['OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'udp', 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL must be one of: http/protobuf, http/json, grpc'],
    ['OTEL_METRIC_EXPORT_INTERVAL', '1m', 'OTEL_METRIC_EXPORT_INTERVAL must be a whole number of milliseconds'],
    ['OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE', 'sometimes', 'OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE must be one of'],
  ])('rejects %s=%s with a message naming it', (name, value, message) => {
    expect(() => validateEnv({ [name]: value })).toThrow(message);
  });

  it('never echoes OTLP headers, which carry collector credentials', () => {
    expect(() => validateEnv({ OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'api-key secret-token' })).toThrow(
      /OTEL_EXPORTER_OTLP_METRICS_HEADERS=\(hidden\): OTEL_EXPORTER_OTLP_METRICS_HEADERS must be a comma-separated list of key=value pairs/,
    );
    expect(() => validateEnv({ OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'api-key secret-token' })).not.toThrow(/secret-token/);
  });

  it('refuses the sink together with the tracing SDK exporting metrics of its own', () => {
    expect(() => validateEnv({ OTLP_USAGE_SINK: 'true', ENABLE_OPENTELEMETRY: 'true', OTEL_METRICS_EXPORTER: 'otlp' })).toThrow(
      /OTLP_USAGE_SINK=true: OTLP_USAGE_SINK=true cannot be combined with OTEL_METRICS_EXPORTER/,
    );
    expect(() => validateEnv({ OTLP_USAGE_SINK: 'true', ENABLE_OPENTELEMETRY: 'true', OTEL_METRICS_EXPORTER: 'none' })).not.toThrow();
    expect(() => validateEnv({ OTLP_USAGE_SINK: 'true', ENABLE_OPENTELEMETRY: 'true' })).not.toThrow();
  });

  it('reads the flags and the export interval', () => {
    const env = validateEnv({ OTLP_USAGE_SINK: 'true', OTLP_USAGE_LOGS: 'off', OTEL_METRIC_EXPORT_INTERVAL: '15000' });
    expect(env).toMatchObject({ OTLP_USAGE_SINK: true, OTLP_USAGE_LOGS: false, OTEL_METRIC_EXPORT_INTERVAL: 15000 });
  });
});

describe('tasksConfig stale window', () => {
  const withEnv = <T>(vars: Record<string, string>, fn: () => T): T => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, vars);
      return fn();
    } finally {
      process.env = saved;
    }
  };

  it('defaults to 30 s or 10 poll intervals, whichever is longer', () => {
    expect(withEnv({ TASK_POLL_INTERVAL_MS: '1000' }, () => tasksConfig().staleAfterMs)).toBe(30_000);
    expect(withEnv({ TASK_POLL_INTERVAL_MS: '5000' }, () => tasksConfig().staleAfterMs)).toBe(50_000);
    expect(withEnv({ TASK_POLL_INTERVAL_MS: '100', TASK_STALE_AFTER_MS: '2000' }, () => tasksConfig().staleAfterMs)).toBe(2_000);
  });

  it('refuses a window shorter than three poll intervals, naming both variables', () => {
    expect(() => withEnv({ TASK_POLL_INTERVAL_MS: '1000', TASK_STALE_AFTER_MS: '2000' }, () => tasksConfig())).toThrow(
      /TASK_STALE_AFTER_MS=2000: TASK_STALE_AFTER_MS must be at least 3 x TASK_POLL_INTERVAL_MS \(3000\)/,
    );
    expect(() => withEnv({ TASK_STALE_AFTER_MS: '500' }, () => tasksConfig())).toThrow(/TASK_STALE_AFTER_MS=500/);
  });
});

describe('validateEnv: alert notifiers', () => {
  it.each([
    [{ SLACK_WEBHOOK_URL: 'hooks.slack.com/x' }, /SLACK_WEBHOOK_URL=\(hidden\): SLACK_WEBHOOK_URL must be an http\(s\) URL/],
    [{ SLACK_WEBHOOK_URL: 'https://h/x', SLACK_WEBHOOK_URL_FILE: '/run/s' }, /SLACK_WEBHOOK_URL_FILE and SLACK_WEBHOOK_URL are both set/],
    [{ SMTP_URL: 'smtp://u:pw@host:25' }, /SMTP_URL=\(hidden\): SMTP_URL must be smtp:\/\/\[user@\]host\[:port\]/],
    [{ SMTP_URL: 'smtp://host:25', ALERT_EMAIL_TO: 'a@example.com' }, /ALERT_EMAIL_FROM is required when SMTP_URL is set/],
    [{ SMTP_URL: 'smtp://host:25', ALERT_EMAIL_FROM: 'a@example.com' }, /ALERT_EMAIL_TO is required when SMTP_URL is set/],
    [{ ALERT_EMAIL_TO: 'a@example.com, not-an-address' }, /ALERT_EMAIL_TO must be a comma-separated list of email addresses/],
    [{ ALERTMANAGER_URL: 'alertmanager:9093' }, /ALERTMANAGER_URL must be an http\(s\) URL/],
    [{ ALERT_WEBHOOK_URL: 'https://h/x' }, /ALERT_WEBHOOK_SECRET is required when ALERT_WEBHOOK_URL is set/],
    [{ ALERT_WEBHOOK_URL: 'https://h/x', ALERT_WEBHOOK_SECRET: 'short' }, /ALERT_WEBHOOK_SECRET=\(hidden\): ALERT_WEBHOOK_SECRET must be at least 16 characters/],
    [{ ALERT_DELIVERY_MAX_ATTEMPTS: '0' }, /ALERT_DELIVERY_MAX_ATTEMPTS=0/],
    [{ ALERT_DELIVERY_TIMEOUT_MS: 'soon' }, /ALERT_DELIVERY_TIMEOUT_MS="soon"/],
  ])('rejects %o naming the variable', (env, message) => {
    expect(() => validateEnv(env)).toThrow(message);
  });

  it('never echoes a secret value', () => {
    expect(() => validateEnv({ ALERT_WEBHOOK_URL: 'https://h/x', ALERT_WEBHOOK_SECRET: 'tiny-secret' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('tiny-secret') }),
    );
  });

  it('accepts a complete email setup', () => {
    expect(() =>
      validateEnv({ SMTP_URL: 'smtp://asa-alerts%40example.com@smtp.example.com:587', ALERT_EMAIL_FROM: 'a@example.com', ALERT_EMAIL_TO: 'b@example.com, c@example.com' }),
    ).not.toThrow();
  });
});

describe('model name and metrics model limits', () => {
  it.each([
    ['TASK_DEFAULT_MODEL', 'm'.repeat(129), 'TASK_DEFAULT_MODEL must be at most 128 characters'],
    ['METRICS_MAX_MODELS', 'lots', 'METRICS_MAX_MODELS must be a whole number of models'],
    ['METRICS_MAX_MODELS', '-5', 'METRICS_MAX_MODELS must be a whole number of models'],
    ['METRICS_MAX_MODELS', '1000000', 'METRICS_MAX_MODELS must be at most 100000'],
  ])('rejects %s=%s with a message naming it', (name, value, message) => {
    expect(() => validateEnv({ [name]: value })).toThrow(message);
  });

  it('takes a 128-character default model and a limit of 0 (no limit)', () => {
    expect(validateEnv({ TASK_DEFAULT_MODEL: 'm'.repeat(128), METRICS_MAX_MODELS: '0' })).toMatchObject({ TASK_DEFAULT_MODEL: 'm'.repeat(128), METRICS_MAX_MODELS: 0 });
  });
});
