/**
 * The columns of a raw usage record as the per-call views select them (`GET /usage/records`,
 * `records.csv`), with their API names. The cost comes as text, so a cost above 2^53 nano-dollars
 * is never rounded on the way out of the driver.
 */
export const RAW_RECORD_COLUMNS = [
  'u.id AS id',
  'u.created_at_ms AS created_at_ms',
  'u.task_id AS task_id',
  'u.user_id AS user_id',
  'u.trace_id AS trace_id',
  'u.provider AS provider',
  'u.operation AS operation',
  'u.requested_model AS requested_model',
  'u.response_model AS response_model',
  'u.status AS status',
  'u.error_type AS error_type',
  'u.input_tokens AS input_tokens',
  'u.cached_input_tokens AS cached_input_tokens',
  'u.cache_write_tokens AS cache_write_tokens',
  'u.output_tokens AS output_tokens',
  'u.reasoning_tokens AS reasoning_tokens',
  'u.total_tokens AS total_tokens',
  'CAST(u.cost_nanos AS TEXT) AS cost_nanos',
  'u.unpriced AS unpriced',
  'u.estimated AS estimated',
  'u.price_source AS price_source',
  'u.latency_ms AS latency_ms',
  'u.ttft_ms AS ttft_ms',
  'u.streamed AS streamed',
  'u.tags AS tags',
];
