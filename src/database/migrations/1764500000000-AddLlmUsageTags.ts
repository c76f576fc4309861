import { MigrationInterface, QueryRunner } from 'typeorm';

// The gateway's `x-asa-tags` on each raw usage row (canonical JSON, see common/usage-tags).
// Plain ALTER TABLE, which both databases run as it is: TypeORM's addColumn would copy the whole
// table on SQLite. Nullable with no default, so no existing row is rewritten on either database.
export class AddLlmUsageTags1764500000000 implements MigrationInterface {
  name = 'AddLlmUsageTags1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE "llm_usage" ADD COLUMN "tags" text');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('llm_usage', 'tags');
  }
}
