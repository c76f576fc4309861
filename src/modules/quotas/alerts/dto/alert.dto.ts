import { ApiProperty } from '@nestjs/swagger';
import { ALERT_KINDS, ALERT_STATES } from '../entities/alert.entity';
import { DELIVERY_STATES } from '../entities/alert-delivery.entity';

export class AlertScopeDto {
  @ApiProperty({ required: false, example: 'alice' })
  user_id?: string;
  @ApiProperty({ required: false, example: 'gpt-4o' })
  model?: string;
  @ApiProperty({ required: false })
  task_id?: string;
}

export class AlertWindowDto {
  @ApiProperty({ enum: ['task', 'day', 'week', 'month', 'rolling'] })
  kind: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: "Start (inclusive); null for a task window (the task's whole life)" })
  start: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'End (exclusive); null when the window has no fixed end' })
  end: string | null;
}

export class AlertDeliveryDto {
  @ApiProperty({ example: 'slack' })
  notifier: string;
  @ApiProperty({ enum: DELIVERY_STATES, description: 'Which notification this attempt carried' })
  state: string;
  @ApiProperty({ description: 'Attempt number for this notifier and state, from 1; 0 is a re-send while firing (stored only when it failed)', example: 1 })
  attempt: number;
  @ApiProperty({ enum: ['ok', 'failed'] })
  result: string;
  @ApiProperty({ nullable: true, type: String, description: 'Why the attempt failed (never holds secrets)', example: 'Slack answered HTTP 500: internal_error' })
  error: string | null;
  @ApiProperty({ nullable: true, type: Number, description: 'HTTP status the receiver answered, when there was one', example: 500 })
  http_status: number | null;
  @ApiProperty({ format: 'date-time' })
  started_at: string;
  @ApiProperty({ format: 'date-time' })
  finished_at: string;
  @ApiProperty({ example: 42 })
  duration_ms: number;
}

export class AlertDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ enum: ALERT_KINDS })
  kind: string;
  @ApiProperty({ enum: ALERT_STATES })
  state: string;
  @ApiProperty({ example: 'alice-monthly' })
  rule_id: string;
  @ApiProperty({ type: AlertScopeDto, description: 'The scope value the spend was counted for; empty for a global rule' })
  scope: AlertScopeDto;
  @ApiProperty({ description: 'Highest threshold crossed, percent of the limit', example: 80 })
  threshold_percent: number;
  @ApiProperty({ description: 'Spend as a percentage of the limit when the alert fired', example: 82.4 })
  percent: number;
  @ApiProperty({ nullable: true, type: String, description: 'Exact spend in the window when it fired, USD', example: '41.200000000' })
  spend_usd: string | null;
  @ApiProperty({ nullable: true, type: String, example: '50.000000000' })
  limit_usd: string | null;
  @ApiProperty({ nullable: true, type: Number })
  spend_tokens: number | null;
  @ApiProperty({ nullable: true, type: Number })
  limit_tokens: number | null;
  @ApiProperty({ type: AlertWindowDto })
  window: AlertWindowDto;
  @ApiProperty({ enum: ['alert', 'block'] })
  action: string;
  @ApiProperty({ type: [String], description: 'Notifiers this alert goes to', example: ['slack', 'email'] })
  notify: string[];
  @ApiProperty({ format: 'date-time' })
  fired_at: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  resolved_at: string | null;
  @ApiProperty({ description: 'True while some notifier is still being delivered to (or retried)' })
  delivery_pending: boolean;
  @ApiProperty({ type: [AlertDeliveryDto], description: 'Every delivery attempt, oldest first' })
  deliveries: AlertDeliveryDto[];
}

export class AlertListDto {
  @ApiProperty({ type: [AlertDto] })
  alerts: AlertDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next (older) page; null on the last page' })
  next_cursor: string | null;
}

export class TestNotifierResultDto {
  @ApiProperty({ example: 'slack' })
  notifier: string;
  @ApiProperty()
  ok: boolean;
  @ApiProperty({ nullable: true, type: String, example: 'The webhook receiver answered HTTP 401: bad signature' })
  error: string | null;
  @ApiProperty({ nullable: true, type: Number, example: 401 })
  http_status: number | null;
  @ApiProperty({ example: 120 })
  duration_ms: number;
}

export class TestAlertResponseDto {
  @ApiProperty({ format: 'uuid', description: 'Id of the stored test alert (GET /api/v1/alerts?kind=test)' })
  alert_id: string;
  @ApiProperty({ type: [TestNotifierResultDto], description: 'One entry per configured notifier; empty when none is configured' })
  results: TestNotifierResultDto[];
}
