import { ApiProperty } from '@nestjs/swagger';

export class UsageRecordDto {
  @ApiProperty({ description: 'Id of the usage record (one per LLM call)' })
  id: string;
  @ApiProperty({ description: 'When the call completed, ISO 8601 UTC', example: '2026-11-26T23:56:55.102Z' })
  created_at: string;
  @ApiProperty({ nullable: true, type: String })
  task_id: string | null;
  @ApiProperty({ nullable: true, type: String })
  user_id: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'OpenTelemetry trace id of the call' })
  trace_id: string | null;
  @ApiProperty({ example: 'openai' })
  provider: string;
  @ApiProperty({ example: 'chat', enum: ['chat', 'embeddings', 'responses'], description: 'the API the call used: Chat Completions, Embeddings or the Responses API' })
  operation: string;
  @ApiProperty({ description: 'The model the caller asked for', example: 'gpt-4o-mini' })
  requested_model: string;
  @ApiProperty({ nullable: true, type: String, description: 'The model the provider says answered' })
  response_model: string | null;
  @ApiProperty({ enum: ['success', 'error'] })
  status: string;
  @ApiProperty({ nullable: true, type: String, example: null })
  error_type: string | null;
  @ApiProperty({ example: 1200 })
  input_tokens: number;
  @ApiProperty({ example: 0 })
  cached_input_tokens: number;
  @ApiProperty({ example: 0 })
  cache_write_tokens: number;
  @ApiProperty({ example: 300 })
  output_tokens: number;
  @ApiProperty({ example: 0 })
  reasoning_tokens: number;
  @ApiProperty({ example: 1500 })
  total_tokens: number;
  @ApiProperty({ nullable: true, type: Number, description: 'USD rounded to the nano-dollar; null when the model has no known price', example: 0.000405 })
  cost_usd: number | null;
  @ApiProperty({ nullable: true, type: String, description: 'Exact USD, 9 decimals; null when unpriced', example: '0.000405000' })
  cost_usd_exact: string | null;
  @ApiProperty()
  unpriced: boolean;
  @ApiProperty({ description: 'Token counts were estimated locally (the provider reported none)' })
  estimated: boolean;
  @ApiProperty({ nullable: true, type: String })
  price_source: string | null;
  @ApiProperty({ example: 812.5 })
  latency_ms: number;
  @ApiProperty({ nullable: true, type: Number, description: 'Streamed calls: time to the first chunk, ms' })
  ttft_ms: number | null;
  @ApiProperty()
  streamed: boolean;
  @ApiProperty({ nullable: true, type: 'object', additionalProperties: { type: 'string' }, description: "Tags the caller set (the gateway's x-asa-tags header); null when none", example: { team: 'search' } })
  tags: Record<string, string> | null;
}

export class UsageRecordListDto {
  @ApiProperty({ type: [UsageRecordDto], description: 'Newest first' })
  records: UsageRecordDto[];

  @ApiProperty({ description: 'Pass as ?cursor= (with the same filters) for the next, older page; null on the last page', nullable: true, type: String })
  next_cursor: string | null;
}

export class UsageLatencyDto {
  @ApiProperty({ example: 7 })
  days: number;
  @ApiProperty({ example: '2026-01-01T12:00:00.000Z' })
  from: string;
  @ApiProperty({ example: '2026-01-08T12:00:00.000Z' })
  to: string;
  @ApiProperty({ description: 'Calls in the window (failed ones included)', example: 120 })
  requests: number;
  @ApiProperty({ nullable: true, type: Number, description: 'Median latency, ms (nearest rank); null without calls', example: 640 })
  p50_latency_ms: number | null;
  @ApiProperty({ nullable: true, type: Number, description: '95th percentile latency, ms (nearest rank); null without calls', example: 2100 })
  p95_latency_ms: number | null;
}
