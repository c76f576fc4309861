import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintToNumber } from '../../../database/bigint.transformer';
import { tagsFromColumn, tagsToColumn, UsageTags } from '../../../common/usage-tags';

/** One row per LLM call. Mirrors `UsageRecord` from the plugin SDK, in snake_case. */
@Entity({ name: 'llm_usage' })
@Index('idx_llm_usage_created', ['createdAtMs'])
@Index('idx_llm_usage_task', ['taskId', 'createdAtMs'])
@Index('idx_llm_usage_user', ['userId', 'createdAtMs'])
export class LlmUsage {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'created_at_ms', type: 'bigint', transformer: bigintToNumber })
  createdAtMs: number;

  @Column({ name: 'task_id', type: 'varchar', length: 64, nullable: true })
  taskId: string | null;

  @Column({ name: 'user_id', type: 'varchar', length: 128, nullable: true })
  userId: string | null;

  @Column({ name: 'trace_id', type: 'varchar', length: 32, nullable: true })
  traceId: string | null;

  @Column({ type: 'varchar', length: 64 })
  provider: string;

  @Column({ type: 'varchar', length: 16 })
  operation: string;

  @Column({ name: 'requested_model', type: 'varchar', length: 128 })
  requestedModel: string;

  @Column({ name: 'response_model', type: 'varchar', length: 128, nullable: true })
  responseModel: string | null;

  @Column({ name: 'input_tokens', type: 'integer', default: 0 })
  inputTokens: number;

  @Column({ name: 'cached_input_tokens', type: 'integer', default: 0 })
  cachedInputTokens: number;

  @Column({ name: 'cache_write_tokens', type: 'integer', default: 0 })
  cacheWriteTokens: number;

  @Column({ name: 'output_tokens', type: 'integer', default: 0 })
  outputTokens: number;

  @Column({ name: 'reasoning_tokens', type: 'integer', default: 0 })
  reasoningTokens: number;

  @Column({ name: 'total_tokens', type: 'integer', default: 0 })
  totalTokens: number;

  /** Integer nano-dollars, so sums are exact; null when unpriced. */
  @Column({ name: 'cost_nanos', type: 'bigint', nullable: true, transformer: bigintToNumber })
  costNanos: number | null;

  @Column({ type: 'boolean', default: false })
  unpriced: boolean;

  @Column({ name: 'price_source', type: 'varchar', length: 200, nullable: true })
  priceSource: string | null;

  @Column({ name: 'latency_ms', type: 'double precision' })
  latencyMs: number;

  @Column({ name: 'ttft_ms', type: 'double precision', nullable: true })
  timeToFirstTokenMs: number | null;

  @Column({ type: 'boolean', default: false })
  streamed: boolean;

  @Column({ type: 'varchar', length: 16 })
  status: string;

  @Column({ name: 'error_type', type: 'varchar', length: 64, nullable: true })
  errorType: string | null;

  @Column({ type: 'boolean', default: false })
  estimated: boolean;

  /** Caller-supplied tags as canonical JSON (see common/usage-tags); null when none. */
  @Column({ type: 'text', nullable: true, transformer: { to: tagsToColumn, from: tagsFromColumn } })
  tags?: UsageTags | null;
}
