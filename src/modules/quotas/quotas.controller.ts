import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Put } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { nanosToUsdExact } from '../../common/money';
import { AdminOnly } from '../auth/admin-only.decorator';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { QuotaIdParamDto } from './dto/quota-id-param.dto';
import { QuotaEvaluationService, QuotaSnapshotEntry } from './quota-evaluation.service';
import { QuotaRule, ruleToJson, windowToJson } from './quota-rule';
import { QuotaRulesService } from './quota-rules.service';

const RULE_EXAMPLE = {
  id: 'alice-monthly',
  scope: { user_id: 'alice' },
  limit_usd: '50',
  window: 'month',
  thresholds: [50, 80, 100],
  action: 'block',
  notify: ['slack'],
};

@ApiTags('quotas')
@ApiBearerAuth()
@Controller('api/v1/quotas')
export class QuotasController {
  constructor(
    private readonly rules: QuotaRulesService,
    private readonly evaluation: QuotaEvaluationService,
  ) {}

  @Get()
  @AdminOnly()
  @ApiOperation({ summary: 'Every quota rule; rules from QUOTAS_FILE say "source": "file" and are read-only here' })
  async list() {
    return { rules: (await this.rules.list()).map(ruleToJson) };
  }

  @Get('status')
  @ApiOperation({
    summary: "Each rule's spend, limit and percentage per scope value in its current window",
    description: 'A user-scope key sees only rules scoped by user_id, and only its own scope value.',
  })
  async status(@CurrentPrincipal() principal: Principal) {
    const now = new Date();
    const snapshot = await this.evaluation.snapshot(now);
    const visible = principal.scope === 'admin' ? snapshot : snapshot.filter((e) => e.rule.scope.user_id !== undefined && e.scope.user_id === principal.userId);
    const byRule = new Map<string, { rule: QuotaRule; entries: QuotaSnapshotEntry[] }>();
    // Every visible rule is listed, also a "*" rule nobody has spent under yet.
    for (const rule of await this.rules.list()) {
      const mine = rule.scope.user_id !== undefined && (rule.scope.user_id === '*' || rule.scope.user_id === principal.userId);
      if (principal.scope === 'admin' || mine) byRule.set(rule.id, { rule, entries: [] });
    }
    for (const e of visible) byRule.get(e.rule.id)?.entries.push(e);
    return {
      evaluated_at: now.toISOString(),
      rules: [...byRule.values()].map(({ rule, entries }) => ({
        rule_id: rule.id,
        source: rule.source,
        action: rule.action,
        limit_usd: rule.limitNanos !== null ? nanosToUsdExact(rule.limitNanos) : null,
        limit_tokens: rule.limitTokens,
        window: windowToJson(rule.window),
        scope_values: entries.map((e) => ({
          scope: e.scope,
          spend_usd: rule.limitNanos !== null ? nanosToUsdExact(e.nanos) : null,
          spend_tokens: Number(e.tokens),
          percent: e.percent,
          window: {
            kind: e.bounds.kind,
            start: e.bounds.startMs !== null ? new Date(e.bounds.startMs).toISOString() : null,
            end: e.bounds.endMs !== null ? new Date(e.bounds.endMs).toISOString() : null,
          },
        })),
      })),
    };
  }

  @Post('evaluate')
  @AdminOnly()
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Evaluates every rule now and raises the alerts of crossed thresholds; answers what it evaluated and fired' })
  evaluate() {
    return this.evaluation.evaluate();
  }

  @Get(':id')
  @AdminOnly()
  @ApiOperation({ summary: 'One quota rule' })
  async get(@Param() params: QuotaIdParamDto) {
    return ruleToJson(await this.rules.get(params.id));
  }

  @Post()
  @AdminOnly()
  @ApiOperation({ summary: 'Creates a quota rule (400 naming the field for a bad rule, 409 for a used id)' })
  @ApiBody({ schema: { type: 'object', example: RULE_EXAMPLE } })
  async create(@Body() body: unknown) {
    return ruleToJson(await this.rules.create(body));
  }

  @Put(':id')
  @AdminOnly()
  @ApiOperation({ summary: 'Replaces a quota rule made through the API (403 for a rule from QUOTAS_FILE)' })
  @ApiBody({ schema: { type: 'object', example: RULE_EXAMPLE } })
  async update(@Param() params: QuotaIdParamDto, @Body() body: unknown) {
    return ruleToJson(await this.rules.update(params.id, body));
  }

  @Delete(':id')
  @AdminOnly()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Deletes a quota rule made through the API (403 for a rule from QUOTAS_FILE)' })
  async remove(@Param() params: QuotaIdParamDto) {
    await this.rules.remove(params.id);
  }
}
