import type { INestApplication } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { getDataSourceToken } from '@nestjs/typeorm';
import { networkInterfaces } from 'node:os';
import { DataSource, MigrationExecutor } from 'typeorm';
import { databaseConfig, DatabaseConfig } from './config/database.config';
import { llmConfig } from './config/llm.config';
import { DEFAULT_OPENAI_BASE_URL, displayEndpoint } from './modules/llm/llm-client.factory';
import { PluginInfo, PluginRegistry } from './modules/plugins/plugin-registry.service';
import type { PluginKindName } from './modules/plugins/plugin-kinds';

/** Where the service listens, as given to `app.listen`. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** The database as a log may show it: a SQLite file's path, or PostgreSQL's host, port and database, never the user or password. */
export function describeDatabase(db: DatabaseConfig): string {
  if (db.type === 'sqlite') return db.path === ':memory:' ? 'SQLite in memory' : `SQLite file ${db.path}`;
  try {
    const u = new URL(db.url);
    const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || '(the user\'s default database)';
    return `PostgreSQL ${u.hostname || 'local socket'}:${u.port || '5432'}/${name}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL not shown)';
  }
}

/**
 * The address in words: an unspecified address is shown as such (it is not `localhost`), with the
 * URLs that reach it from this machine and from others.
 */
export function describeListenAddress({ host, port }: ListenAddress, interfaces = networkInterfaces()): string {
  const url = (h: string) => `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
  if (host !== '0.0.0.0' && host !== '::') return `${url(host)} (docs at ${url(host)}/docs)`;
  const v6 = host === '::';
  const others = Object.values(interfaces)
    .flat()
    .filter((i) => i && !i.internal && (v6 || i.family === 'IPv4') && !i.address.startsWith('fe80:'))
    .map((i) => url(i!.address))
    .slice(0, 3);
  const local = url('127.0.0.1');
  return (
    `${url(host)}, every network interface: ${local} from this machine` +
    (others.length > 0 ? `, ${others.join(' or ')} from others` : '') +
    ` (docs at ${local}/docs)`
  );
}

/**
 * What the service is running with, logged once after it listens: the database, migrations, the
 * LLM endpoint (never its key), the plugins loaded and the real listen address. A line a user can
 * read to tell a misconfiguration from a bug.
 */
export async function startupReport(app: INestApplication, listen: ListenAddress): Promise<string[]> {
  const db = app.get<DatabaseConfig>(databaseConfig.KEY);
  const llm = app.get<ConfigType<typeof llmConfig>>(llmConfig.KEY);
  let plugins: string;
  try {
    plugins = describePlugins(app.get(PluginRegistry, { strict: false }).list());
  } catch (err) {
    plugins = `plugins could not be listed (${(err as Error).message})`;
  }
  let migrations: string;
  try {
    const dataSource = app.get<DataSource>(getDataSourceToken());
    const executed = await new MigrationExecutor(dataSource).getExecutedMigrations();
    // Newest first, as TypeORM returns them.
    migrations = executed.length > 0 ? `${executed.length} applied, latest ${executed[0].name}` : 'none applied';
  } catch (err) {
    migrations = `could not be listed (${(err as Error).message})`;
  }
  const key = llm.apiKey ? 'API key set' : llm.baseUrl ? 'no API key (none sent)' : 'no API key: model calls are refused until OPENAI_API_KEY is set';
  return [
    `database: ${describeDatabase(db)}`,
    `migrations: ${migrations}`,
    `LLM endpoint: ${displayEndpoint(llm.baseUrl ?? DEFAULT_OPENAI_BASE_URL)} (${key})`,
    plugins,
    `asa-backend listening on ${describeListenAddress(listen)}`,
  ];
}

const KIND_TITLES: [PluginKindName, string][] = [
  ['sink', 'usage sinks'],
  ['notifier', 'alert notifiers'],
  ['destination', 'export destinations'],
  ['agent', 'task agents'],
];

/** The plugins in use by kind (a loaded one with where it came from), then the optional ones skipped. */
export function describePlugins(plugins: PluginInfo[]): string {
  const inUse = (kind: PluginKindName) =>
    plugins
      .filter((p) => p.kind === kind && (p.state === 'active' || p.state === 'failing'))
      .map((p) => (p.module ? `${p.name} (${p.module})` : p.name))
      .join(', ') || '(none)';
  const skipped = plugins.filter((p) => p.state === 'skipped').map((p) => `${p.kind} ${p.module ?? p.name}`);
  return (
    KIND_TITLES.map(([kind, title]) => `${title}: ${inUse(kind)}`).join('; ') +
    (skipped.length > 0 ? `; skipped (optional, could not be loaded): ${skipped.join(', ')}` : '')
  );
}
