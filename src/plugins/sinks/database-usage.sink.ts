import { Injectable, Logger } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { LlmUsage } from '../../modules/usage/entities/llm-usage.entity';
import { CONFIRMING_SINK } from '../../modules/usage/journal/journal.constants';
import type { UsageRecord, UsageSink, UsageSinkPolicy } from '../sdk';
import { isPermanentDataError } from '../../database/database-errors';

/** Rows per INSERT statement: 25 columns x 400 rows stays under SQLite's and PostgreSQL's bind-parameter limits. */
const ROWS_PER_STATEMENT = 400;
const INT32_MAX = 2_147_483_647;

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

  constructor(private readonly dataSource: DataSource) {}

  async write(records: readonly UsageRecord[]): Promise<void> {
    const rows = records.map((r) => this.toRow(r));
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
        }
      }
    }
  }

  private async insert(manager: EntityManager, rows: LlmUsage[]): Promise<void> {
    for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
      await manager
        .createQueryBuilder()
        .insert()
        .into(LlmUsage)
        .values(rows.slice(i, i + ROWS_PER_STATEMENT))
        .orIgnore()
        .updateEntity(false)
        .execute();
    }
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
