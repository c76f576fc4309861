import { tasksConfig } from '../../../config/tasks.config';
import { buildSandboxEnv, isSecretEnvName, pickPassthroughEnv } from './sandbox-env';

const SERVICE_ENV = {
  PATH: '/usr/bin:/bin',
  LANG: 'en_US.UTF-8',
  HOME: '/home/service',
  OPENAI_API_KEY: 'sk-live-secret',
  OPENAI_BASE_URL: 'https://api.openai.com/v1',
  DATABASE_URL: 'postgres://asa:pw@db/asa',
  SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/X',
  SMTP_PASSWORD: 'hunter2',
  OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer abc',
  AWS_SECRET_ACCESS_KEY: 'aws',
  GITHUB_TOKEN: 'ghp_x',
  JAVA_HOME: '/opt/java',
};

describe('sandbox environment', () => {
  it('passes only the allowlist, never secrets, even when a deployer lists them', () => {
    const picked = pickPassthroughEnv(SERVICE_ENV, ['JAVA_HOME', 'OPENAI_API_KEY', 'DATABASE_URL', 'GITHUB_TOKEN', 'SMTP_PASSWORD']);
    expect(picked).toEqual({ PATH: '/usr/bin:/bin', LANG: 'en_US.UTF-8', JAVA_HOME: '/opt/java' });
  });

  it('recognises secret-looking names', () => {
    for (const name of Object.keys(SERVICE_ENV).filter((n) => !['PATH', 'LANG', 'HOME', 'JAVA_HOME'].includes(n))) {
      expect(isSecretEnvName(name), name).toBe(true);
    }
    for (const name of ['PATH', 'LANG', 'TZ', 'JAVA_HOME', 'GOPATH']) expect(isSecretEnvName(name), name).toBe(false);
  });

  it('builds the whole environment: workspace HOME/TMPDIR, CI=true, node on PATH, nothing else', () => {
    const env = buildSandboxEnv({ PATH: '/usr/bin:/bin', OPENAI_API_KEY: 'sk-smuggled' }, { home: '/w/home', tmp: '/w/tmp' });
    expect(env.HOME).toBe('/w/home');
    expect(env.TMPDIR).toBe('/w/tmp');
    expect(env.CI).toBe('true');
    expect(env.PATH.split(':')).toContain('/usr/bin');
    expect(env.PATH.split(':')[0]).toBe(require('node:path').dirname(process.execPath));
    expect(env.OPENAI_API_KEY).toBeUndefined();
  });

  it('the tasks config snapshots the passthrough from the environment without secrets', () => {
    const saved = { ...process.env };
    try {
      process.env.OPENAI_API_KEY = 'sk-from-env';
      process.env.MY_TOOL_HOME = '/opt/tool';
      process.env.TASK_TEST_ENV_PASSTHROUGH = 'MY_TOOL_HOME, OPENAI_API_KEY';
      const config = tasksConfig();
      expect(config.testEnv.MY_TOOL_HOME).toBe('/opt/tool');
      expect(config.testEnv).not.toHaveProperty('OPENAI_API_KEY');
      expect(Object.values(config.testEnv)).not.toContain('sk-from-env');
    } finally {
      process.env = saved;
    }
  });
});
