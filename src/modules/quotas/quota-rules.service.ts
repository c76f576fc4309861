import { Inject, Injectable, Logger, OnModuleInit, Optional } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { existsSync } from 'node:fs';
import { DataSource } from 'typeorm';
import { quotasConfig } from '../../config/quotas.config';
import { QUOTA_ALERTS, QuotaAlerts } from './quota-alerts.port';
import { QuotaCounterStore } from './quota-counter.store';
import { parseQuotaRule, QuotaRule, RuleProblem, ruleToJson } from './quota-rule';
import { QuotaRuleExistsException, QuotaRuleInvalidException, QuotaRuleNotFoundException, QuotaRuleReadOnlyException } from './quotas.exceptions';
import { InjectWriteDataSource } from '../../database/data-sources';
import { databaseUnavailableReason } from '../../database/database-errors';
import { readConfigFile, StartConfigError } from '../../common/start-config-error';

/** A quotas file the deployer must fix: one line naming it and the problem. */
export class QuotasFileError extends StartConfigError {}

/** Rules from the API are re-read this often, so a rule created on one replica soon applies on all. */
const API_RULES_TTL_MS = 2_000;

/**
 * Quota rules: read-only ones from QUOTAS_FILE (loaded and validated at start; a bad file stops
 * the start) and ones managed through the API (stored in `quota_rules`).
 */
@Injectable()
export class QuotaRulesService implements OnModuleInit {
  private readonly logger = new Logger(QuotaRulesService.name);
  private fileRules: QuotaRule[] = [];
  private cache: { at: number; rules: QuotaRule[] } | null = null;
  /** The one read of the API rules under way: calls arriving meanwhile share it. */
  private loading: Promise<QuotaRule[]> | null = null;
  /** Whether the rules in use are the last ones read before the database became unavailable. */
  private stale = false;

  constructor(
    @InjectWriteDataSource() private readonly dataSource: DataSource,
    private readonly counters: QuotaCounterStore,
    @Inject(quotasConfig.KEY) private readonly config: ConfigType<typeof quotasConfig>,
    @Optional() @Inject(QUOTA_ALERTS) private readonly alerts: QuotaAlerts | null,
  ) {}

  onModuleInit(): void {
    this.fileRules = this.loadFile();
    if (this.fileRules.length > 0) this.logger.log(`${this.fileRules.length} quota rule(s) from ${this.config.file}`);
  }

  /** Names a rule's `notify` may use: the configured notifiers. */
  notifierNames(): string[] {
    return this.alerts?.notifierNames() ?? [];
  }

  /** File rules first, then API rules, each in id order. */
  async list(): Promise<QuotaRule[]> {
    const now = Date.now();
    if (!this.cache || now - this.cache.at > API_RULES_TTL_MS) {
      const previous = this.cache;
      try {
        this.loading ??= this.loadApiRules().finally(() => (this.loading = null));
        this.cache = { at: now, rules: await this.loading };
        if (this.stale) this.logger.log('quota rules read again');
        this.stale = false;
      } catch (err) {
        // While the database is unavailable, the rules last read still apply (read again after
        // the TTL): a call no block rule covers goes ahead, one a rule covers waits for its counter.
        const reason = databaseUnavailableReason(err);
        if (!previous || reason === null) throw err;
        if (!this.stale) this.logger.warn(`quota rules not re-read (${reason}): using the ${previous.rules.length} API rule(s) last read`);
        this.stale = true;
        this.cache = { at: now, rules: previous.rules };
      }
    }
    // The file wins over an API rule created with the same id before the file named it.
    const fileIds = new Set(this.fileRules.map((r) => r.id));
    return [...this.fileRules, ...this.cache.rules.filter((r) => !fileIds.has(r.id))];
  }

  async get(id: string): Promise<QuotaRule> {
    const rule = (await this.fresh()).find((r) => r.id === id);
    if (!rule) throw new QuotaRuleNotFoundException(`No quota rule "${id}"`);
    return rule;
  }

  async create(body: unknown): Promise<QuotaRule> {
    const rule = this.parse(body);
    const existing = (await this.fresh()).find((r) => r.id === rule.id);
    if (existing) {
      throw new QuotaRuleExistsException(
        existing.source === 'file'
          ? `Quota rule "${rule.id}" comes from the quotas file (${this.config.file}) and is read-only here; choose another id`
          : `Quota rule "${rule.id}" exists already; change it with PUT /api/v1/quotas/${rule.id}`,
      );
    }
    const now = Date.now();
    try {
      await this.dataSource
        .createQueryBuilder()
        .insert()
        .into('quota_rules', ['id', 'body', 'created_at_ms', 'updated_at_ms'])
        .values({ id: rule.id, body: JSON.stringify(ruleToJson(rule)), created_at_ms: now, updated_at_ms: now })
        .execute();
    } catch (err) {
      // Another request (or replica) created it between the check and the insert.
      if ((await this.loadApiRules()).some((r) => r.id === rule.id)) throw new QuotaRuleExistsException(`Quota rule "${rule.id}" exists already`);
      throw err;
    }
    this.cache = null;
    return rule;
  }

  async update(id: string, body: unknown): Promise<QuotaRule> {
    const existing = await this.get(id);
    this.assertWritable(existing);
    const withId = isObject(body) && body.id === undefined ? { ...body, id } : body;
    const rule = this.parse(withId);
    if (rule.id !== id) throw new QuotaRuleInvalidException(`id must match the rule in the path ("${id}"), got "${rule.id}"; ids cannot be changed`);
    await this.dataSource
      .createQueryBuilder()
      .update('quota_rules')
      .set({ body: JSON.stringify(ruleToJson(rule)), updated_at_ms: Date.now() })
      .where('id = :id', { id })
      .execute();
    // Counters are keyed by scope value and window; a rule counting something else starts afresh.
    if (JSON.stringify([existing.scope, existing.window]) !== JSON.stringify([rule.scope, rule.window])) await this.counters.dropRule(id);
    this.cache = null;
    return rule;
  }

  async remove(id: string): Promise<void> {
    const existing = await this.get(id);
    this.assertWritable(existing);
    await this.dataSource.createQueryBuilder().delete().from('quota_rules').where('id = :id', { id }).execute();
    await this.counters.dropRule(id);
    this.cache = null;
  }

  private async fresh(): Promise<QuotaRule[]> {
    this.cache = null;
    return this.list();
  }

  private assertWritable(rule: QuotaRule): void {
    if (rule.source === 'file') {
      throw new QuotaRuleReadOnlyException(`Quota rule "${rule.id}" comes from the quotas file (${this.config.file}); change it there and restart`);
    }
  }

  private parse(body: unknown): QuotaRule {
    try {
      return parseQuotaRule(body, 'api', this.notifierNames());
    } catch (err) {
      if (err instanceof RuleProblem) throw new QuotaRuleInvalidException(err.message, { field: err.field });
      throw err;
    }
  }

  private async loadApiRules(): Promise<QuotaRule[]> {
    const rows = await this.dataSource
      .createQueryBuilder()
      .select('q.id', 'id')
      .addSelect('q.body', 'body')
      .from('quota_rules', 'q')
      .orderBy('q.id', 'ASC')
      .getRawMany<{ id: string; body: string }>();
    const rules: QuotaRule[] = [];
    for (const row of rows) {
      try {
        // Notifiers are not re-checked here: a stored rule stays in force if a notifier is removed.
        rules.push(parseQuotaRule(JSON.parse(row.body), 'api', null));
      } catch (err) {
        this.logger.error(`stored quota rule "${row.id}" is unreadable and is skipped: ${(err as Error).message}`);
      }
    }
    return rules;
  }

  private loadFile(): QuotaRule[] {
    const file = this.config.file;
    if (!existsSync(file)) {
      if (this.config.fileRequired) throw new QuotasFileError(`QUOTAS_FILE ${file} does not exist`);
      return [];
    }
    const text = readConfigFile(file, (problem) => new QuotasFileError(`QUOTAS_FILE ${file} ${problem}`));
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new QuotasFileError(`QUOTAS_FILE ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (!isObject(doc) || !Array.isArray(doc.rules)) throw new QuotasFileError(`QUOTAS_FILE ${file} must hold { "rules": [ ... ] }`);
    const names = this.notifierNames();
    const rules: QuotaRule[] = [];
    doc.rules.forEach((raw: unknown, i: number) => {
      const label = isObject(raw) && typeof raw.id === 'string' ? `rule "${raw.id}"` : `rule #${i + 1}`;
      try {
        const rule = parseQuotaRule(raw, 'file', names);
        if (rules.some((r) => r.id === rule.id)) throw new RuleProblem('id', `"${rule.id}" is used by two rules`);
        rules.push(rule);
      } catch (err) {
        if (err instanceof RuleProblem) throw new QuotasFileError(`QUOTAS_FILE ${file}: ${label}: ${err.message}`);
        throw err;
      }
    });
    return rules.sort((a, b) => a.id.localeCompare(b.id));
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
