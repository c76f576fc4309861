import type { CostAlert } from '../sdk';

/**
 * Words and figures shared by the human-readable notifiers (Slack, email), so both say the same
 * thing. Amounts stay exact: trailing zeros are trimmed, never rounded away.
 */

/** `"12.340000000"` -> `"$12.34"`, `"0.000012300"` -> `"$0.0000123"`. */
export function formatUsd(amount: string | null): string | null {
  if (amount === null) return null;
  const [whole, frac = ''] = amount.split('.');
  const trimmed = frac.replace(/0+$/, '').padEnd(2, '0');
  return `$${whole}.${trimmed}`;
}

export function formatPercent(percent: number): string {
  return `${Number.isInteger(percent) ? percent : percent.toFixed(1)} %`;
}

export function scopeText(scope: CostAlert['scope']): string {
  const parts = Object.entries(scope)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return parts.length > 0 ? parts.join(', ') : 'global (all calls)';
}

export function windowText(window: CostAlert['window']): string {
  if (window.start === null) return window.kind; // a task window: the task's whole life
  const end = window.end ? ` to ${window.end}` : '';
  return `${window.kind}, from ${window.start}${end}`;
}

export function spendText(alert: CostAlert): string {
  const usd = formatUsd(alert.spendUsd);
  const tokens = alert.spendTokens !== null ? `${alert.spendTokens} tokens` : null;
  return [usd, tokens].filter(Boolean).join(' / ') || 'n/a';
}

export function limitText(alert: CostAlert): string {
  const usd = formatUsd(alert.limitUsd);
  const tokens = alert.limitTokens !== null ? `${alert.limitTokens} tokens` : null;
  return [usd, tokens].filter(Boolean).join(' / ') || 'n/a';
}

export function actionText(alert: CostAlert): string {
  return alert.action === 'block' ? 'block: calls over the limit are refused' : 'alert only: calls are not blocked';
}

/** One-line summary, e.g. "Quota alice-monthly passed 80 % (user_id=alice): $41.20 of $50.00". */
export function headline(alert: CostAlert): string {
  if (alert.kind === 'test') return 'Test notification from asa-backend: this notifier works';
  const what = `Quota ${alert.ruleId} passed ${formatPercent(alert.thresholdPercent)} (${scopeText(alert.scope)})`;
  const figures = `${spendText(alert)} of ${limitText(alert)}`;
  // A block rule's limit alert also fires when a call is refused because its worst case does not
  // fit in what is left, which can happen well below 100 % (e.g. a first, large call).
  if (alert.state === 'firing' && alert.action === 'block' && alert.thresholdPercent >= 100 && alert.percent < 100) {
    return `Quota ${alert.ruleId} refused a call (${scopeText(alert.scope)}): ${figures} spent, too little left for the call's worst-case cost`;
  }
  return alert.state === 'resolved' ? `Resolved: ${what}; its window has ended` : `${what}: ${figures}`;
}

/** The labelled figures every human-readable message shows, in this order. */
export function facts(alert: CostAlert): [label: string, value: string][] {
  return [
    ['Rule', alert.ruleId],
    ['Scope', scopeText(alert.scope)],
    ['Spend', spendText(alert)],
    ['Limit', limitText(alert)],
    ['Percentage', `${formatPercent(alert.percent)} (threshold ${formatPercent(alert.thresholdPercent)})`],
    ['Window', windowText(alert.window)],
    ['Action', actionText(alert)],
    ['State', alert.state === 'resolved' ? `resolved at ${alert.resolvedAt}` : `firing since ${alert.firedAt}`],
  ];
}
