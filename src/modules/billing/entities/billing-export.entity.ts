import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintToNumber } from '../../../database/bigint.transformer';

export type ExportStatus = 'current' | 'superseded';
export type ExportKind = 'daily' | 'monthly' | 'custom';

/** What each destination reported for this export (stored as JSON). */
export interface StoredDeliveryResult {
  destination: string;
  status: 'delivered' | 'failed';
  location: string | null;
  detail: Record<string, string | number | boolean | null> | null;
  error: string | null;
  at: string;
}

/**
 * One row per export file. A series is one period, grouping and scope (`series_key`); its versions
 * are unique, so two processes can never both create v2. Files are never changed: late data makes
 * a new version and the previous one is marked `superseded`.
 */
@Entity({ name: 'billing_exports' })
@Index('uq_billing_exports_series_version', ['seriesKey', 'version'], { unique: true })
@Index('idx_billing_exports_created', ['createdAtMs', 'id'])
export class BillingExport {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'series_key', type: 'varchar', length: 512 })
  seriesKey: string;

  @Column({ type: 'varchar', length: 16 })
  kind: ExportKind;

  @Column({ name: 'period_start_ms', type: 'bigint', transformer: bigintToNumber })
  periodStartMs: number;

  @Column({ name: 'period_end_ms', type: 'bigint', transformer: bigintToNumber })
  periodEndMs: number;

  @Column({ name: 'time_zone', type: 'varchar', length: 64 })
  timeZone: string;

  /** Comma-separated group columns in file order, e.g. `user,model`. */
  @Column({ name: 'group_by', type: 'varchar', length: 64 })
  groupBy: string;

  /** The user a user-scope key exported for; null for an admin (all users) export. */
  @Column({ name: 'user_id', type: 'varchar', length: 128, nullable: true })
  userId: string | null;

  @Column({ type: 'integer' })
  version: number;

  @Column({ type: 'varchar', length: 16 })
  status: ExportStatus;

  @Column({ name: 'file_name', type: 'varchar', length: 255 })
  fileName: string;

  @Column({ type: 'varchar', length: 64 })
  sha256: string;

  @Column({ type: 'bigint', transformer: bigintToNumber })
  bytes: number;

  @Column({ type: 'integer' })
  rows: number;

  @Column({ name: 'total_requests', type: 'bigint', transformer: bigintToNumber })
  totalRequests: number;

  /** Exact nano-dollars as a decimal string (may pass 2^53). */
  @Column({ name: 'total_cost_nanos', type: 'varchar', length: 40 })
  totalCostNanos: string;

  /** Token and request sums of the file (JSON). */
  @Column({ type: 'text' })
  totals: string;

  /** StoredDeliveryResult[] as JSON. */
  @Column({ type: 'text', default: '[]' })
  destinations: string;

  /** `schedule` or the API key name that ran it. */
  @Column({ name: 'created_by', type: 'varchar', length: 128 })
  createdBy: string;

  @Column({ name: 'created_at_ms', type: 'bigint', transformer: bigintToNumber })
  createdAtMs: number;

  @Column({ name: 'superseded_at_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  supersededAtMs: number | null;

  @Column({ name: 'superseded_by', type: 'varchar', length: 36, nullable: true })
  supersededBy: string | null;
}
