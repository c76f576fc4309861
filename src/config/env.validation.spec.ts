import { tasksConfig } from './tasks.config';
import { parseDatabaseUrl } from './database.config';
import { validateEnv } from './env.validation';

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
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => validateEnv({ [name]: value })).toThrow(new RegExp(`\\b${name}=`));
  });

  it('reports what kind of value is expected, not the range, when the kind is wrong', () => {
    expect(() => validateEnv({ PORT: 'eighty' })).toThrow(/PORT="eighty": PORT must be an integer number$/m);
    expect(() => validateEnv({ PORT: '70000' })).toThrow(/PORT=70000: PORT must not be greater than 65535$/m);
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
