import { decimalToString, parseDecimal } from '../../common/decimal';
import { nanosToUsdExact } from '../../common/money';

export const SCOPE_KEYS = ['user_id', 'model', 'task_id'] as const;
export type ScopeKey = (typeof SCOPE_KEYS)[number];
export type QuotaScope = Partial<Record<ScopeKey, string>>;

export type QuotaWindow = { kind: 'task' | 'day' | 'week' | 'month' } | { kind: 'rolling'; hours: number };

export const DEFAULT_THRESHOLDS = [50, 80, 100];
/** Longest rolling window (31 days): its spend is kept in hourly buckets. */
export const MAX_ROLLING_HOURS = 744;

/** A validated quota rule. Money is integer nano-dollars. */
export interface QuotaRule {
  readonly id: string;
  readonly scope: QuotaScope;
  readonly limitNanos: bigint | null;
  readonly limitTokens: number | null;
  readonly window: QuotaWindow;
  readonly thresholds: readonly number[];
  readonly action: 'alert' | 'block';
  /** Notifier names; null = every configured notifier. */
  readonly notify: readonly string[] | null;
  readonly source: 'file' | 'api';
}

/** A rule as the API and the file spell it. */
export interface QuotaRuleJson {
  id: string;
  scope: QuotaScope;
  limit_usd?: string;
  limit_tokens?: number;
  window: 'task' | 'day' | 'week' | 'month' | { rolling_hours: number };
  thresholds: number[];
  action: 'alert' | 'block';
  notify: string[] | null;
  source: 'file' | 'api';
}

/** One problem with a rule: the field (`scope.region`, `limit_usd`, ...) and what is wrong with it. */
export class RuleProblem extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RULE_KEYS = ['id', 'scope', 'limit_usd', 'limit_tokens', 'window', 'thresholds', 'action', 'notify', 'source'];

/**
 * Validates a rule from the file or the API. `notifierNames` is the list a `notify` entry must come
 * from (null = not checked). Throws a RuleProblem naming the first bad field.
 */
export function parseQuotaRule(input: unknown, source: 'file' | 'api', notifierNames: readonly string[] | null): QuotaRule {
  if (!isObject(input)) throw new RuleProblem('rule', 'must be a JSON object');
  for (const key of Object.keys(input)) {
    if (!RULE_KEYS.includes(key)) throw new RuleProblem(key, `is not a rule field (fields: ${RULE_KEYS.filter((k) => k !== 'source').join(', ')})`);
  }
  // `source` is accepted only as an echo of what GET returned, so a listed rule can be sent back.
  if (input.source !== undefined && input.source !== source) throw new RuleProblem('source', `must be "${source}" here (it is set by where the rule comes from)`);
  const id = input.id;
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new RuleProblem('id', 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  const scope = parseScope(input.scope);
  const limitNanos = input.limit_usd === undefined || input.limit_usd === null ? null : parseLimitUsd(input.limit_usd);
  const limitTokens = input.limit_tokens === undefined || input.limit_tokens === null ? null : parseLimitTokens(input.limit_tokens);
  if (limitNanos === null && limitTokens === null) throw new RuleProblem('limit_usd', 'or limit_tokens is required');
  const window = parseWindow(input.window);
  const thresholds = parseThresholds(input.thresholds);
  const action = input.action ?? 'alert';
  if (action !== 'alert' && action !== 'block') throw new RuleProblem('action', 'must be "alert" or "block"');
  const notify = parseNotify(input.notify, notifierNames);
  return { id, scope, limitNanos, limitTokens, window, thresholds, action, notify, source };
}

export function ruleToJson(rule: QuotaRule): QuotaRuleJson {
  return {
    id: rule.id,
    scope: { ...rule.scope },
    ...(rule.limitNanos !== null ? { limit_usd: trimUsd(rule.limitNanos) } : {}),
    ...(rule.limitTokens !== null ? { limit_tokens: rule.limitTokens } : {}),
    window: windowToJson(rule.window),
    thresholds: [...rule.thresholds],
    action: rule.action,
    notify: rule.notify === null ? null : [...rule.notify],
    source: rule.source,
  };
}

export function windowToJson(w: QuotaWindow): QuotaRuleJson['window'] {
  return w.kind === 'rolling' ? { rolling_hours: w.hours } : w.kind;
}

/** "50", "0.25": the exact amount without trailing zeros. */
export function trimUsd(nanos: bigint): string {
  return nanosToUsdExact(nanos).replace(/\.?0+$/, '');
}

function parseScope(value: unknown): QuotaScope {
  // Required, so a rule whose scope was left out or mistyped is refused rather than applied to every call.
  if (value === undefined || value === null) throw new RuleProblem('scope', 'is required: an object with any of user_id, model, task_id ({} = every call)');
  if (!isObject(value)) throw new RuleProblem('scope', 'must be an object with any of user_id, model, task_id ({} = every call)');
  const scope: QuotaScope = {};
  for (const [key, v] of Object.entries(value)) {
    if (!(SCOPE_KEYS as readonly string[]).includes(key)) {
      throw new RuleProblem(`scope.${key}`, `is not a scope key (use user_id, model or task_id)`);
    }
    if (typeof v !== 'string' || v.trim() === '' || v.length > 128) {
      throw new RuleProblem(`scope.${key}`, 'must be a non-empty string of at most 128 characters ("*" = each value separately)');
    }
    if (key === 'task_id' && v === '*') throw new RuleProblem('scope.task_id', 'cannot be "*": use "window": "task" to limit each task separately');
    scope[key as ScopeKey] = v;
  }
  return scope;
}

function parseLimitUsd(value: unknown): bigint {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new RuleProblem('limit_usd', 'must be a decimal string or number of USD, e.g. "50" or 12.5');
  }
  if ((typeof value === 'number' && value < 0) || (typeof value === 'string' && value.trim().startsWith('-'))) {
    throw new RuleProblem('limit_usd', `must not be negative, got ${JSON.stringify(value)}`);
  }
  // A string is a plain decimal as a person writes an amount ("50", "12.50"); exponent forms such
  // as "1e3" are refused rather than read as 1000.
  if (typeof value === 'string' && !/^\s*\d+(\.\d+)?\s*$/.test(value)) {
    throw new RuleProblem('limit_usd', `must be a plain decimal such as "50" or "12.5" (no exponent, sign or unit), got ${JSON.stringify(value)}`);
  }
  const d = parseDecimal(value);
  if (!d) throw new RuleProblem('limit_usd', `must be a decimal string or number of USD, got ${JSON.stringify(value)}`);
  const text = decimalToString(d);
  const frac = text.includes('.') ? text.split('.')[1].length : 0;
  if (frac > 9) throw new RuleProblem('limit_usd', `has more than 9 decimals (amounts are exact to the nano-dollar), got ${JSON.stringify(value)}`);
  const nanos = d.scale <= 9 ? d.units * 10n ** BigInt(9 - d.scale) : d.units / 10n ** BigInt(d.scale - 9);
  if (nanos > 9_000_000_000_000_000_000n / 10n) throw new RuleProblem('limit_usd', 'is too large');
  return nanos;
}

function parseLimitTokens(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new RuleProblem('limit_tokens', `must be a whole number of tokens, got ${JSON.stringify(value)}`);
  if (value < 0) throw new RuleProblem('limit_tokens', `must not be negative, got ${value}`);
  return value;
}

function parseWindow(value: unknown): QuotaWindow {
  if (value === 'task' || value === 'day' || value === 'week' || value === 'month') return { kind: value };
  if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1 || keys[0] !== 'rolling_hours') {
      throw new RuleProblem('window', 'as an object must be { "rolling_hours": N } and nothing else');
    }
    const h = value.rolling_hours;
    if (typeof h !== 'number' || !Number.isInteger(h) || h < 1 || h > MAX_ROLLING_HOURS) {
      throw new RuleProblem('window.rolling_hours', `must be a whole number of hours from 1 to ${MAX_ROLLING_HOURS}, got ${JSON.stringify(h)}`);
    }
    return { kind: 'rolling', hours: h };
  }
  throw new RuleProblem('window', `must be "task", "day", "week", "month" or { "rolling_hours": N }, got ${JSON.stringify(value ?? null)}`);
}

function parseThresholds(value: unknown): number[] {
  if (value === undefined || value === null) return [...DEFAULT_THRESHOLDS];
  if (!Array.isArray(value) || value.length === 0 || value.length > 10) throw new RuleProblem('thresholds', 'must be a list of 1 to 10 percentages, e.g. [50, 80, 100]');
  for (const t of value) {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 1000) {
      throw new RuleProblem('thresholds', `must hold whole percentages from 1 to 1000, got ${JSON.stringify(t)}`);
    }
  }
  const sorted = [...new Set(value as number[])].sort((a, b) => a - b);
  if (sorted.length !== value.length) throw new RuleProblem('thresholds', 'must not repeat a value');
  return sorted;
}

function parseNotify(value: unknown, notifierNames: readonly string[] | null): string[] | null {
  if (value === undefined || value === null) return null;
  if (!Array.isArray(value)) throw new RuleProblem('notify', 'must be a list of notifier names (omit it for every configured notifier)');
  for (const name of value) {
    if (typeof name !== 'string' || name === '') throw new RuleProblem('notify', `must hold notifier names, got ${JSON.stringify(name)}`);
    if (notifierNames !== null && !notifierNames.includes(name)) {
      throw new RuleProblem(
        'notify',
        `names "${name}", which is not a configured notifier (configured: ${notifierNames.length > 0 ? notifierNames.join(', ') : 'none'})`,
      );
    }
  }
  return [...new Set(value as string[])];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Does a call with these attributes fall under the rule's scope? */
export function ruleApplies(rule: QuotaRule, call: { userId: string | null; model: string; taskId: string | null }): boolean {
  if (rule.window.kind === 'task' && call.taskId === null) return false;
  return (
    matches(rule.scope.user_id, call.userId) && matches(rule.scope.model, call.model) && matches(rule.scope.task_id, call.taskId)
  );
}

function matches(pattern: string | undefined, value: string | null): boolean {
  if (pattern === undefined) return true;
  if (value === null) return false;
  return pattern === '*' || pattern === value;
}

/**
 * The scope value a call is counted under: the rule's scope with "*" replaced by the call's value,
 * plus the task for a `task` window (each task separately).
 */
export function scopeValueOf(rule: QuotaRule, call: { userId: string | null; model: string; taskId: string | null }): QuotaScope {
  const v: QuotaScope = {};
  if (rule.scope.user_id !== undefined) v.user_id = call.userId ?? '';
  if (rule.scope.model !== undefined) v.model = call.model;
  if (rule.scope.task_id !== undefined || rule.window.kind === 'task') v.task_id = call.taskId ?? '';
  return v;
}

/** A stable key of a scope value (for counters and alert dedup keys). */
export function scopeKey(scope: QuotaScope): string {
  return SCOPE_KEYS.filter((k) => scope[k] !== undefined)
    .map((k) => `${k}=${scope[k]}`)
    .join(',');
}
