import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintToNumber } from '../../../../database/bigint.transformer';

export const DELIVERY_STATES = ['firing', 'resolved', 'test'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/** One row per attempt to deliver one state of one alert to one notifier. */
@Entity({ name: 'alert_deliveries' })
@Index('idx_alert_deliveries_alert', ['alertId', 'notifier', 'state'])
export class AlertDelivery {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'alert_id', type: 'varchar', length: 36 })
  alertId: string;

  @Column({ type: 'varchar', length: 64 })
  notifier: string;

  @Column({ type: 'varchar', length: 16 })
  state: DeliveryState;

  /** 1 for the first attempt of this notifier and state. */
  @Column({ type: 'integer' })
  attempt: number;

  @Column({ type: 'varchar', length: 8 })
  result: 'ok' | 'failed';

  /** Why the attempt failed, as the notifier said it (notifiers keep secrets out of it). */
  @Column({ type: 'varchar', length: 1000, nullable: true })
  error: string | null;

  /** HTTP status the receiver answered, for HTTP notifiers that report one. */
  @Column({ name: 'http_status', type: 'integer', nullable: true })
  httpStatus: number | null;

  @Column({ name: 'started_at_ms', type: 'bigint', transformer: bigintToNumber })
  startedAtMs: number;

  @Column({ name: 'finished_at_ms', type: 'bigint', transformer: bigintToNumber })
  finishedAtMs: number;
}
