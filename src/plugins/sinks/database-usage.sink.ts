import { createHash } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager, ValueTransformer } from 'typeorm';
import { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { ApplyValueTransformers } from 'typeorm/util/ApplyValueTransformers';
import { LlmUsage } from '../../modules/usage/entities/llm-usage.entity';
import { CONFIRMING_SINK } from '../../modules/usage/journal/journal.constants';
import type { UsageRecord, UsageSink, UsageSinkPolicy, UsageSinkWriteResult } from '../sdk';
import { isPermanentDataError } from '../../database/database-errors';
import { DbType, summariseSql, SUMMARIES } from '../../modules/usage/rollups/rollup-schema';

/** Rows per INSERT statement on SQLite: 25 columns x 400 rows stays under its bind-parameter limit. */
const ROWS_PER_STATEMENT = 400;
const INT32_MAX = 2_147_483_647;

interface InsertColumn {
  prop: keyof LlmUsage;
  column: string;
  bool: boolean;
  transformer: ValueTransformer | ValueTransformer[] | null;
  metadata: ColumnMetadata;
}

/**
 * Writes usage records to the service's database (SQLite or PostgreSQL), one transaction per
 * batch. Inserts ignore an id that is already there, so a retried batch never duplicates a record.
 */
@Injectable()
export class DatabaseUsageSink implements UsageSink {
  // The journal counts a record as safe once this sink has written it.
  readonly name = CONFIRMING_SINK;
  readonly policy: Partial<UsageSinkPolicy> = { onFailure: 'retry' };
  private readonly logger = new Logger(DatabaseUsageSink.name);
  private varcharLimits: [keyof LlmUsage, number][] | null = null;
  private insertColumns: InsertColumn[] | null = null;
  private postgresWrite: { name: string; text: string } | null = null;

  constructor(private readonly dataSource: DataSource) {}

  async write(records: readonly UsageRecord[]): Promise<UsageSinkWriteResult> {
    const rows = records.map((r) => this.toRow(r));
    const rejected: string[] = [];
    try {
      await this.dataSource.transaction((manager) => this.insert(manager, rows));
    } catch (err) {
      if (!isPermanentDataError(err)) throw err;
      // One record the database refuses must not hold back the whole batch forever (the policy
      // is `retry`): write the rows one by one and give up only on the refused ones. A transient
      // error here fails the batch again; rows already written are then skipped (idempotent ids).
      for (const row of rows) {
        try {
          await this.dataSource.transaction((manager) => this.insert(manager, [row]));
        } catch (rowErr) {
          if (!isPermanentDataError(rowErr)) throw rowErr;
          this.reject(row, rowErr);
          rejected.push(row.id);
        }
      }
    }
    return { rejected };
  }

  /**
   * The raw rows, then the summaries of exactly the rows that insert wrote (rollup-schema.ts), in
   * the batch's transaction: a replayed or retried record is skipped by the insert (its id is
   * there) and so never counted twice. The database computes the summaries from those rows with
   * the SQL the rebuild uses (one INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE per
   * summary), so the sink, the migration and `rollups:rebuild` agree to the nano-dollar. Both run
   * on the transaction's own driver connection: TypeORM's insert builder cost about half the CPU
   * of a record.
   */
  private async insert(manager: EntityManager, rows: LlmUsage[]): Promise<void> {
    const runner = manager.queryRunner;
    if (!runner) throw new Error('the usage sink must insert inside a transaction');
    const connection: unknown = await runner.connect();
    if (this.dbType === 'postgres') await this.insertPostgres(connection as PgConnection, rows);
    else await this.insertSqlite(connection as SqliteConnection, rows);
  }

  /**
   * One statement per batch, whatever its size: the rows go as one array per column through
   * `unnest` (a fixed text, so a named statement parsed and planned once per connection, where
   * multi-row VALUES cost a parse of thousands of parameters per batch), and the summaries read
   * the rows the insert returned, as CTEs of the same statement.
   */
  private async insertPostgres(connection: PgConnection, rows: LlmUsage[]): Promise<void> {
    const cols = this.columns();
    const values = cols.map((c) => rows.map((row) => this.value(c, row, false)));
    this.postgresWrite ??= postgresWriteStatement(cols.map((c) => ({ column: c.column, type: this.dataSource.driver.normalizeType(c.metadata) })));
    await connection.query({ ...this.postgresWrite, values });
  }

  /**
   * Multi-row INSERTs of up to 400 rows, then one summarising statement per summary over the rows
   * they wrote: those past the rowid the table held before them. SQLite gives a new row the
   * table's largest rowid + 1 (https://sqlite.org/autoinc.html), so the rows one statement
   * inserted are the `changes` rowids up to `lastID`, and the transaction holds the database's
   * only write lock from its first insert on, so no other connection adds rows in between.
   */
  private async insertSqlite(connection: SqliteConnection, rows: LlmUsage[]): Promise<void> {
    const cols = this.columns();
    let before: number | null = null;
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
      const values = new Array<unknown>(chunk.length * cols.length);
      let k = 0;
      for (const row of chunk) for (const c of cols) values[k++] = this.value(c, row, true);
      const { changes, lastID } = await sqliteRun(connection, sqliteInsertSql(cols, chunk.length), values);
      if (changes > 0 && before === null) before = lastID - changes;
    }
    if (before === null) return;
    for (const s of SUMMARIES) await sqliteRun(connection, summariseSql('sqlite', s, `u.rowid > ${before}`), []);
  }

  private get dbType(): DbType {
    return this.dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  /** Column names, the row properties they come from and their transformers, in insert order (from the entity, once). */
  private columns(): InsertColumn[] {
    this.insertColumns ??= this.dataSource.getMetadata(LlmUsage).columns.map((c) => ({
      prop: c.propertyName as keyof LlmUsage,
      column: c.databaseName,
      bool: c.type === 'boolean',
      transformer: c.transformer ?? null,
      metadata: c,
    }));
    return this.insertColumns;
  }

  /** A row's value for a column as the driver takes it. */
  private value(c: InsertColumn, row: LlmUsage, sqlite: boolean): unknown {
    // The entity's column transformers apply as with TypeORM's insert (tags are stored as canonical JSON).
    const v = (c.transformer ? ApplyValueTransformers.transformTo(c.transformer, row[c.prop]) : row[c.prop]) ?? null;
    // TypeORM stores booleans as 0/1 on SQLite; the raw driver must do the same.
    return c.bool && sqlite ? (v ? 1 : 0) : v;
  }

  /**
   * UsageRecord and the entity share property names, so a record is a row as it is, except that
   * text longer than its column is cut (PostgreSQL refuses it; SQLite would keep it) and token
   * counts are kept inside the INTEGER columns: the call is still accounted, with its exact cost.
   */
  private toRow(r: UsageRecord): LlmUsage {
    const row = Object.assign(new LlmUsage(), r);
    for (const [prop, max] of this.limits()) {
      const value = row[prop];
      if (typeof value === 'string' && value.length > max) (row as unknown as Record<string, unknown>)[prop] = value.slice(0, max);
    }
    for (const prop of ['inputTokens', 'cachedInputTokens', 'cacheWriteTokens', 'outputTokens', 'reasoningTokens', 'totalTokens'] as const) {
      row[prop] = Math.min(INT32_MAX, Math.max(0, Math.round(Number(row[prop]) || 0)));
    }
    return row;
  }

  private limits(): [keyof LlmUsage, number][] {
    this.varcharLimits ??= this.dataSource
      .getMetadata(LlmUsage)
      // Not the id: a cut id could collide with another record's.
      .columns.filter((c) => c.type === 'varchar' && c.length && c.propertyName !== 'id')
      .map((c) => [c.propertyName as keyof LlmUsage, Number(c.length)]);
    return this.varcharLimits;
  }

  private reject(row: LlmUsage, err: unknown): void {
    this.logger.error(
      `usage record ${row.id} refused by the database and not stored (task ${row.taskId ?? '-'}, model ${row.requestedModel}): ${
        err instanceof Error ? err.message : String(err)
      }`,
    );
  }
}

const sqliteInsertSqlCache = new Map<number, string>();

function sqliteInsertSql(cols: { column: string }[], rowCount: number): string {
  let sql = sqliteInsertSqlCache.get(rowCount);
  if (sql === undefined) {
    const tuple = `(${cols.map(() => '?').join(', ')})`;
    sql = `INSERT INTO llm_usage (${cols.map((c) => c.column).join(', ')}) VALUES ${new Array<string>(rowCount).fill(tuple).join(', ')} ON CONFLICT (id) DO NOTHING`;
    sqliteInsertSqlCache.set(rowCount, sql);
  }
  return sql;
}

/**
 * The batch's statement on PostgreSQL: the insert as a CTE returning the rows it wrote, and one
 * summarising CTE per summary over them. Named by a hash of its text, so a connection prepares
 * it once and a changed text never meets an old preparation.
 */
function postgresWriteStatement(cols: { column: string; type: string }[]): { name: string; text: string } {
  const arrays = cols.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ');
  const insert = `INSERT INTO llm_usage (${cols.map((c) => c.column).join(', ')}) SELECT * FROM unnest(${arrays}) ON CONFLICT (id) DO NOTHING RETURNING *`;
  const summaries = SUMMARIES.map((s, i) => `, summary_${i} AS (${summariseSql('postgres', s, 'TRUE', 'written')})`).join('');
  const text = `WITH written AS (${insert})${summaries} SELECT COUNT(*) AS written FROM written`;
  return { name: `asa_usage_write_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text };
}

interface SqliteConnection {
  run(sql: string, values: unknown[], cb: (this: { changes: number; lastID: number }, err: Error | null) => void): void;
}
interface PgConnection {
  query(q: { text: string; values: unknown[]; name?: string }): Promise<unknown>;
}

function sqliteRun(connection: SqliteConnection, sql: string, values: unknown[]): Promise<{ changes: number; lastID: number }> {
  return new Promise((resolve, reject) =>
    connection.run(sql, values, function (err) {
      if (err) reject(err);
      else resolve({ changes: this.changes, lastID: this.lastID });
    }),
  );
}
