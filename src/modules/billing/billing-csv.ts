import type { Options } from 'csv-stringify';

export const GROUP_BY_VALUES = ['user', 'model', 'task', 'day'] as const;
export type GroupBy = (typeof GROUP_BY_VALUES)[number];
export const DEFAULT_GROUP_BY: GroupBy[] = ['user', 'model'];

/** The CSV column of each grouping (the order of `group_by` is the order of the columns). */
export const GROUP_COLUMN: Record<GroupBy, string> = { user: 'user_id', model: 'model', task: 'task_id', day: 'day' };

export const SUM_COLUMNS = [
  'requests',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'output_tokens',
  'reasoning_tokens',
  'unpriced_requests',
] as const;
export type SumColumn = (typeof SUM_COLUMNS)[number];

export const CURRENCY = 'USD';

export function exportColumns(groupBy: readonly GroupBy[]): string[] {
  return ['period_start', 'period_end', ...groupBy.map((g) => GROUP_COLUMN[g]), ...SUM_COLUMNS, 'cost_usd', 'currency'];
}

/**
 * One set of options for every CSV the service writes: RFC 4180 (CRLF line ends, fields quoted
 * when they hold a comma, quote or line break), a header row, and cells that a spreadsheet would
 * run as a formula (starting with = + - @, tab or carriage return) prefixed with a single quote.
 * Only user-supplied text (user, model, task ids, error types) can start that way: the numbers
 * and timestamps the service writes never do, so escaping every cell changes none of them.
 */
export function csvOptions(columns: readonly string[]): Options {
  return { header: true, columns: [...columns], record_delimiter: 'windows', escape_formulas: true, eof: true };
}
