/** One task as the demo saw it through the API. */
export interface DemoTaskRow {
  readonly label: string;
  readonly taskId: string;
  readonly status: string;
  readonly attempts: number;
  readonly failureReason: string | null;
  readonly calls: number;
  readonly tokens: number;
  readonly costUsd: number;
}

export interface DemoOverall {
  readonly requests: number;
  readonly tokens: number;
  readonly costUsd: number;
  readonly taskSuccessRatePercent: number | null;
}

export const DEMO_PREFIX = '[SIMULATED LLM]';

const usd = (n: number) => `$${n.toFixed(6)}`;

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** The usage report, one string per line (without the prefix). */
export function formatUsageReport(rows: readonly DemoTaskRow[], overall: DemoOverall, model: string): string[] {
  const out: string[] = [];
  out.push(`Usage report: every call below was answered by the local SIMULATOR, not a real model.`);
  out.push(`Token counts are the simulator's; costs are what ${model} would cost at list price for those tokens.`);
  out.push('');
  out.push(
    ...table(
      ['task', 'status', 'attempts', 'LLM calls', 'tokens', 'cost (USD)', 'reason'],
      rows.map((r) => [r.label, r.status, String(r.attempts), String(r.calls), String(r.tokens), usd(r.costUsd), r.failureReason ?? '-']),
    ),
  );
  out.push('');
  const rate = overall.taskSuccessRatePercent === null ? 'n/a' : `${overall.taskSuccessRatePercent.toFixed(1)}%`;
  out.push(
    `Overall: ${rows.length} tasks, ${overall.requests} simulated LLM calls, ${overall.tokens} tokens, ` +
      `${usd(overall.costUsd)} (simulated), task success rate ${rate}`,
  );
  return out;
}
