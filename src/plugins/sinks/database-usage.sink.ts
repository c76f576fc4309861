import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager, ValueTransformer } from 'typeorm';
import { ApplyValueTransformers } from 'typeorm/util/ApplyValueTransformers';
import { LlmUsage } from '../../modules/usage/entities/llm-usage.entity';
import { CONFIRMING_SINK } from '../../modules/usage/journal/journal.constants';
import type { UsageRecord, UsageSink, UsageSinkPolicy, UsageSinkWriteResult } from '../sdk';
import { isPermanentDataError } from '../../database/database-errors';
import { DbType, placeholder, RollupDelta } from '../../modules/usage/rollups/rollup-schema';

/** Rows per INSERT statement: 25 columns x 400 rows stays under SQLite's and PostgreSQL's bind-parameter limits. */
const ROWS_PER_STATEMENT = 400;
const INT32_MAX = 2_147_483_647;

interface InsertColumn {
  prop: keyof LlmUsage;
  column: string;
  bool: boolean;
  transformer: ValueTransformer | ValueTransformer[] | null;
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
   * One multi-row `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id` per 400 rows, sent on the
   * transaction's own driver connection (TypeORM's insert builder cost about half the CPU of a
   * record), then the rollups of exactly the rows that were inserted, in the same transaction: a
   * replayed or retried record is skipped by the insert and so never counted twice.
   */
  private async insert(manager: EntityManager, rows: LlmUsage[]): Promise<void> {
    const runner = manager.queryRunner;
    if (!runner) throw new Error('the usage sink must insert inside a transaction');
    const connection: unknown = await runner.connect();
    const db = this.dbType;
    const delta = new RollupDelta();
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
      const byId = new Map<string, LlmUsage>();
      for (const row of chunk) if (!byId.has(row.id)) byId.set(row.id, row);
      const inserted = await run(db, connection, insertSql(db, this.columns(), chunk.length), this.values(chunk), chunk.length);
      for (const { id } of inserted) {
        const row = byId.get(id);
        if (row) delta.add(row);
      }
    }
    for (const [sql, values] of delta.statements(db)) await run(db, connection, sql, values);
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
    }));
    return this.insertColumns;
  }

  private values(rows: LlmUsage[]): unknown[] {
    const cols = this.columns();
    // TypeORM stores booleans as 0/1 on SQLite; the raw driver must do the same.
    const sqlite = this.dbType === 'sqlite';
    const out = new Array<unknown>(rows.length * cols.length);
    let k = 0;
    for (const row of rows) {
      for (const c of cols) {
        // The entity's column transformers apply as with TypeORM's insert (tags are stored as canonical JSON).
        const v = (c.transformer ? ApplyValueTransformers.transformTo(c.transformer, row[c.prop]) : row[c.prop]) ?? null;
        out[k++] = c.bool && sqlite ? (v ? 1 : 0) : v;
      }
    }
    return out;
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

const insertSqlCache = new Map<string, string>();

function insertSql(db: DbType, cols: { column: string }[], rowCount: number): string {
  const cacheKey = `${db}:${rowCount}`;
  let sql = insertSqlCache.get(cacheKey);
  if (sql === undefined) {
    const tuples: string[] = [];
    for (let r = 0; r < rowCount; r++) tuples.push(`(${cols.map((_, c) => placeholder(db, r * cols.length + c + 1)).join(', ')})`);
    sql = `INSERT INTO llm_usage (${cols.map((c) => c.column).join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING RETURNING id`;
    insertSqlCache.set(cacheKey, sql);
  }
  return sql;
}

interface SqliteConnection {
  all(sql: string, values: unknown[], cb: (err: Error | null, rows: { id: string }[]) => void): void;
}
interface PgConnection {
  query(q: { text: string; values: unknown[]; name?: string }): Promise<{ rows: { id: string }[] }>;
}

/**
 * Runs a statement on the driver connection of the transaction. On PostgreSQL, inserts of a full
 * chunk are named prepared statements (parsed and planned once per connection).
 */
async function run(db: DbType, connection: unknown, sql: string, values: unknown[], rowCount?: number): Promise<{ id: string }[]> {
  if (db === 'postgres') {
    const name = rowCount === ROWS_PER_STATEMENT ? `asa_usage_insert_${rowCount}` : undefined;
    return (await (connection as PgConnection).query({ text: sql, values, name })).rows;
  }
  return new Promise((resolve, reject) =>
    (connection as SqliteConnection).all(sql, values, (err, rows) => (err ? reject(err) : resolve(rows ?? []))),
  );
}
