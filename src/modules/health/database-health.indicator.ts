import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { Database, OPEN_READWRITE } from 'sqlite3';
import { DataSource } from 'typeorm';
import { databaseConfig } from '../../config/database.config';
import { databaseUnavailableReason } from '../../database/database-errors';
import { InjectReadDataSource } from '../../database/data-sources';

/** Longest a health check waits for the database before it reports it down. */
export const HEALTH_CHECK_TIMEOUT_MS = 2_000;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The database checks of /health. Their messages are shown to anyone (the endpoint is public),
 * so they name the kind of fault, never a host, port or path; the driver's error is logged.
 */
@Injectable()
export class DatabaseHealthIndicator {
  private readonly logger = new Logger(DatabaseHealthIndicator.name);
  private writeProbe: Promise<string | null> | null = null;

  constructor(
    private readonly indicators: HealthIndicatorService,
    @InjectReadDataSource() private readonly read: DataSource,
    @Inject(databaseConfig.KEY) private readonly db: ConfigType<typeof databaseConfig>,
  ) {}

  /** Does the database answer a query (on the connection the API reads through)? */
  async reads(key: string): Promise<HealthIndicatorResult> {
    const check = this.indicators.check(key);
    try {
      await withTimeout(this.read.query('SELECT 1'), HEALTH_CHECK_TIMEOUT_MS, 'the database');
      return check.up();
    } catch (err) {
      return check.down({ message: this.describe('read check', err) });
    }
  }

  /** Whether writes are possible: only SQLite can be writable for one connection and not for another. */
  get checksWrites(): boolean {
    return this.db.type === 'sqlite' && this.db.path !== ':memory:';
  }

  /**
   * SQLite: can a writer take the file's write lock? Another process holding it (a backup, an
   * operator's `BEGIN IMMEDIATE`) blocks every write of the service while reads go on.
   * Probed on a connection of its own, so the service's writer is never held up by it; a probe
   * already running is shared by concurrent checks.
   */
  async writes(key: string): Promise<HealthIndicatorResult> {
    const check = this.indicators.check(key);
    this.writeProbe ??= this.probeWriteLock().finally(() => (this.writeProbe = null));
    const problem = await this.writeProbe;
    return problem === null ? check.up() : check.down({ message: problem });
  }

  private async probeWriteLock(): Promise<string | null> {
    if (this.db.type !== 'sqlite') return null;
    const path = this.db.path;
    let conn: Database | null = null;
    try {
      conn = await new Promise<Database>((resolve, reject) => {
        const c = new Database(path, OPEN_READWRITE, (err) => (err ? reject(err) : resolve(c)));
      });
      const opened = conn;
      // busy_timeout makes a lock the service's own writer holds for a moment not count as "locked".
      await new Promise<void>((resolve, reject) =>
        opened.exec(`PRAGMA busy_timeout = ${HEALTH_CHECK_TIMEOUT_MS}; BEGIN IMMEDIATE; ROLLBACK;`, (err) => (err ? reject(err) : resolve())),
      );
      return null;
    } catch (err) {
      return this.describe('write check', err);
    } finally {
      if (conn) conn.close(() => undefined);
    }
  }

  private describe(check: string, err: unknown): string {
    this.logger.warn(`database ${check} failed: ${err instanceof Error ? err.message : String(err)}`);
    const reason = databaseUnavailableReason(err);
    if (reason) return reason;
    if (err instanceof Error && err.message.includes('did not answer within')) return `no answer within ${HEALTH_CHECK_TIMEOUT_MS} ms`;
    return 'query failed (see the server log)';
  }
}
