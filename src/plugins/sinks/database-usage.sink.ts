import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LlmUsage } from '../../modules/usage/entities/llm-usage.entity';
import type { UsageRecord, UsageSink, UsageSinkPolicy } from '../sdk';

/** Rows per INSERT statement: 24 columns x 400 rows stays under SQLite's and PostgreSQL's bind-parameter limits. */
const ROWS_PER_STATEMENT = 400;

/**
 * Writes usage records to the service's database (SQLite or PostgreSQL), one transaction per
 * batch. Inserts ignore an id that is already there, so a retried batch never duplicates a record.
 */
@Injectable()
export class DatabaseUsageSink implements UsageSink {
  readonly name = 'database';
  readonly policy: Partial<UsageSinkPolicy> = { onFailure: 'retry' };

  constructor(private readonly dataSource: DataSource) {}

  async write(records: readonly UsageRecord[]): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      for (let i = 0; i < records.length; i += ROWS_PER_STATEMENT) {
        // UsageRecord and the entity share property names, so a record is a row as it is.
        const rows = records.slice(i, i + ROWS_PER_STATEMENT).map((r) => Object.assign(new LlmUsage(), r));
        await manager.createQueryBuilder().insert().into(LlmUsage).values(rows).orIgnore().updateEntity(false).execute();
      }
    });
  }
}
