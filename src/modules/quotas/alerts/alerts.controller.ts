import { Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../../auth/admin-only.decorator';
import { toCostAlert } from './alert-mapping';
import { AlertService } from './alert.service';
import { AlertDto, AlertListDto, TestAlertResponseDto } from './dto/alert.dto';
import { ListAlertsQueryDto } from './dto/list-alerts-query.dto';

const iso = (ms: number) => new Date(ms).toISOString();

@ApiTags('alerts')
@ApiBearerAuth()
@AdminOnly()
@ApiForbiddenResponse({ description: 'The API key has scope "user"; alerts need an admin key' })
@Controller('api/v1/alerts')
export class AlertsController {
  constructor(private readonly alerts: AlertService) {}

  @Get()
  @ApiOperation({ summary: 'Cost alerts, newest first, each with every delivery attempt', description: 'Keyset pagination: pass next_cursor as ?cursor= for the next page.' })
  @ApiOkResponse({ type: AlertListDto })
  @ApiBadRequestResponse({ description: 'A parameter is invalid; the message names it' })
  async list(@Query() query: ListAlertsQueryDto): Promise<AlertListDto> {
    const { items, nextCursor } = await this.alerts.list({ ...query, limit: query.limit ?? 20 });
    return {
      alerts: items.map(({ alert: row, notify, deliveries }): AlertDto => {
        const a = toCostAlert(row);
        return {
          id: a.id,
          kind: a.kind,
          state: a.state,
          rule_id: a.ruleId,
          scope: a.scope,
          threshold_percent: a.thresholdPercent,
          percent: a.percent,
          spend_usd: a.spendUsd,
          limit_usd: a.limitUsd,
          spend_tokens: a.spendTokens,
          limit_tokens: a.limitTokens,
          window: a.window,
          action: a.action,
          notify,
          fired_at: a.firedAt,
          resolved_at: a.resolvedAt,
          delivery_pending: row.dispatchState === 'pending',
          deliveries: deliveries.map((d) => ({
            notifier: d.notifier,
            state: d.state,
            attempt: d.attempt,
            result: d.result,
            error: d.error,
            http_status: d.httpStatus,
            started_at: iso(d.startedAtMs),
            finished_at: iso(d.finishedAtMs),
            duration_ms: d.finishedAtMs - d.startedAtMs,
          })),
        };
      }),
      next_cursor: nextCursor,
    };
  }

  @Post('test')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Send a test notification through every configured notifier',
    description: 'One attempt per notifier (no retries), bounded by ALERT_DELIVERY_TIMEOUT_MS; answers each one\'s result. Stored as an alert of kind "test".',
  })
  @ApiOkResponse({ type: TestAlertResponseDto })
  async test(): Promise<TestAlertResponseDto> {
    const { alertId, results } = await this.alerts.sendTest();
    return {
      alert_id: alertId,
      results: results.map((r) => ({ notifier: r.notifier, ok: r.ok, error: r.error, http_status: r.httpStatus, duration_ms: r.durationMs })),
    };
  }
}
