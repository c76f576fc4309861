/**
 * The dashboard's only way to data: the public REST API, with the key the user typed in. The key
 * is kept in sessionStorage: for this tab only, gone when it closes, never in localStorage.
 */
const KEY_STORAGE = 'asa-dashboard-api-key';

export class AuthRequiredError extends Error {}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_STORAGE),
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
  clear: () => sessionStorage.removeItem(KEY_STORAGE),
};

function headers(): Record<string, string> {
  const key = apiKey.get();
  return key ? { authorization: `Bearer ${key}` } : {};
}

export async function api<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') qs.set(k, String(v));
  const url = `/api/v1/${path}${qs.size > 0 ? `?${qs}` : ''}`;
  const res = await fetch(url, { headers: headers() });
  if (res.status === 401) throw new AuthRequiredError(await message(res));
  if (!res.ok) throw new ApiError(res.status, await message(res));
  return (await res.json()) as T;
}

/** A download the API serves to a key holder: fetched with the key, handed to the browser as a file. */
export async function download(url: string, fileName: string): Promise<void> {
  const res = await fetch(url, { headers: headers() });
  if (!res.ok) throw new ApiError(res.status, await message(res));
  const href = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = href;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}

export interface Whoami {
  api_keys_required: boolean;
  key: { name: string; scope: 'admin' | 'user'; user_id: string | null } | null;
}

/**
 * Whether the API needs a key and whether `key` is accepted (AuthRequiredError when it is not),
 * asked before any data request. Public: without a key it answers 200, not 401.
 */
export async function whoami(key: string | null): Promise<Whoami> {
  const res = await fetch('/api/v1/auth/whoami', { headers: key ? { authorization: `Bearer ${key}` } : {} });
  if (res.status === 401) throw new AuthRequiredError(await message(res));
  if (!res.ok) throw new ApiError(res.status, await message(res));
  return (await res.json()) as Whoami;
}

async function message(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { message?: unknown };
    return typeof body.message === 'string' ? body.message : `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

/* Shapes of the API answers the pages read (see /docs). */
export interface Breakdown {
  requests: number;
  tokens: number;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  failed_requests: number;
  unpriced_requests: number;
  estimated_requests: number;
  cost_usd: number;
  cost_usd_exact: string;
}
export interface Overall {
  days: number;
  from: string;
  to: string;
  total_requests: number;
  total_tokens: number;
  total_cost_usd_exact: string;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  failed_requests: number;
  unpriced_requests: number;
  estimated_requests: number;
  avg_latency_ms: number;
  success_rate_percent: number;
  by_model: Record<string, Breakdown>;
  by_user: Record<string, Breakdown>;
}
export interface Timeseries {
  interval: 'hour' | 'day';
  from: string;
  to: string;
  buckets: { start: string; requests: number; failed_requests: number; cost_usd: number; cost_usd_exact: string; groups: Record<string, Breakdown> }[];
}
export interface TaskStats {
  total_tasks: number;
  by_status: Record<string, number>;
  success_rate_percent: number | null;
  cost_per_successful_task_usd: number | null;
  avg_duration_seconds: number | null;
  p95_duration_seconds: number | null;
}
export interface Latency {
  requests: number;
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
}
export interface Task {
  task_id: string;
  status: string;
  user_id: string | null;
  repo_url: string;
  model: string;
  attempts: number;
  max_attempts: number;
  stage: string | null;
  failure_reason: string | null;
  failure_detail?: string | null;
  cost_usd: number;
  /** Null when some of the task's calls had no known price (the cost is then not known exactly). */
  cost_usd_exact: string | null;
  unpriced_requests: number;
  cost_note: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_seconds: number | null;
  bug_description?: string;
  test_command?: string;
  patch?: string | null;
  test_output_tail?: string | null;
}
export interface UsageRecord {
  id: string;
  created_at: string;
  task_id: string | null;
  user_id: string | null;
  requested_model: string;
  response_model: string | null;
  status: string;
  error_type: string | null;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  cost_usd_exact: string | null;
  unpriced: boolean;
  estimated: boolean;
  latency_ms: number;
}
export interface QuotaStatus {
  evaluated_at: string;
  rules: {
    rule_id: string;
    source: string;
    action: string;
    limit_usd: string | null;
    limit_tokens: number | null;
    window: unknown;
    scope_values: { scope: Record<string, string>; spend_usd: string | null; spend_tokens: number; percent: number; window: { kind: string; start: string | null; end: string | null } }[];
  }[];
}
export interface Alert {
  id: string;
  state: string;
  rule_id: string;
  scope: Record<string, string>;
  threshold_percent: number;
  percent: number;
  spend_usd: string | null;
  limit_usd: string | null;
  fired_at: string;
  resolved_at: string | null;
  deliveries: { notifier: string; result: string }[];
}
export interface BillingExport {
  id: string;
  kind: string;
  period_start: string;
  period_end: string;
  group_by: string[];
  user_id: string | null;
  version: number;
  status: string;
  file_name: string;
  rows: number;
  totals: Record<string, string | number>;
  created_at: string;
  download_url: string;
}
