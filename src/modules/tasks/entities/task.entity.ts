import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintToNumber } from '../../../database/bigint.transformer';

export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const FINAL_TASK_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled'];

/**
 * One row per task: the row IS the queue entry. Workers claim a queued row with a conditional
 * UPDATE, so two workers (or two replicas on PostgreSQL) can never run the same task.
 */
@Entity({ name: 'tasks' })
@Index('idx_tasks_status_created', ['status', 'createdAtMs'])
@Index('idx_tasks_created', ['createdAtMs', 'id'])
@Index('idx_tasks_user_created', ['userId', 'createdAtMs', 'id'])
export class Task {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ type: 'varchar', length: 16 })
  status: TaskStatus;

  @Column({ name: 'user_id', type: 'varchar', length: 128, nullable: true })
  userId: string | null;

  @Column({ name: 'repo_url', type: 'varchar', length: 2048 })
  repoUrl: string;

  @Column({ name: 'bug_description', type: 'text' })
  bugDescription: string;

  @Column({ name: 'test_command', type: 'text' })
  testCommand: string;

  @Column({ type: 'varchar', length: 128 })
  model: string;

  /** Budget in integer nano-dollars (exact, like llm_usage.cost_nanos). */
  @Column({ name: 'max_cost_nanos', type: 'bigint', transformer: bigintToNumber })
  maxCostNanos: number;

  @Column({ name: 'max_attempts', type: 'integer' })
  maxAttempts: number;

  /** Name of the TaskAgent that runs it. */
  @Column({ type: 'varchar', length: 64 })
  agent: string;

  @Column({ type: 'integer', default: 0 })
  attempts: number;

  /** Stage the agent reported last (clone, model, apply, test, ...). */
  @Column({ type: 'varchar', length: 32, nullable: true })
  stage: string | null;

  @Column({ name: 'failure_reason', type: 'varchar', length: 64, nullable: true })
  failureReason: string | null;

  /** Human-readable detail of the failure (never a secret; an error id for internal errors). */
  @Column({ name: 'failure_detail', type: 'varchar', length: 1000, nullable: true })
  failureDetail: string | null;

  @Column({ type: 'text', nullable: true })
  patch: string | null;

  @Column({ name: 'test_output_tail', type: 'text', nullable: true })
  testOutputTail: string | null;

  @Column({ name: 'cancel_requested', type: 'boolean', default: false })
  cancelRequested: boolean;

  /** Process that claimed the task (host:pid:random), for heartbeats and for finishing only what it owns. */
  @Column({ name: 'worker_id', type: 'varchar', length: 128, nullable: true })
  workerId: string | null;

  @Column({ name: 'heartbeat_at_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  heartbeatAtMs: number | null;

  @Column({ name: 'created_at_ms', type: 'bigint', transformer: bigintToNumber })
  createdAtMs: number;

  @Column({ name: 'started_at_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  startedAtMs: number | null;

  @Column({ name: 'finished_at_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  finishedAtMs: number | null;
}
