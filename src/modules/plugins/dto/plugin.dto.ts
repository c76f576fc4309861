import { ApiProperty } from '@nestjs/swagger';

export class PluginErrorDto {
  @ApiProperty({ description: 'What failed (one line; plugins must keep secrets out of their errors)', example: 'sink "warehouse" did not finish a write within 10000 ms' })
  message: string;
  @ApiProperty({ format: 'date-time' })
  at: string;
}

export class PluginDto {
  @ApiProperty({ enum: ['sink', 'notifier', 'destination', 'agent'] })
  kind: string;
  @ApiProperty({ nullable: true, type: String, description: 'Unique within its kind; null for a skipped plugin (its factory never returned)', example: 'jsonl-file' })
  name: string | null;
  @ApiProperty({ enum: ['builtin', 'path', 'package'] })
  source: string;
  @ApiProperty({ nullable: true, type: String, description: 'Path or package name it was loaded from (as written in its *_PLUGINS variable); null for built-ins', example: './examples/jsonl-usage-sink.js' })
  module: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'Plugin API version it declares (built-ins: the service\'s SDK_API_VERSION); null when it declares none', example: '1.1.0' })
  api_version: string | null;
  @ApiProperty({
    enum: ['active', 'failing', 'skipped', 'disabled'],
    description: 'active: in use; failing: in use, its latest write/send/delivery/run failed; skipped: optional plugin that could not be loaded; disabled: built-in without its settings',
  })
  state: string;
  @ApiProperty({ nullable: true, type: String, description: 'Why it is skipped or disabled' })
  detail: string | null;
  @ApiProperty({ nullable: true, type: Number, description: 'Records waiting in a sink\'s queue; null for other kinds', example: 0 })
  queue_depth: number | null;
  @ApiProperty({ description: 'Sinks: usage records written; notifiers: notifications delivered; destinations: export files delivered; agents: tasks run', example: 120 })
  records_written: number;
  @ApiProperty({ description: 'Failed writes, delivery attempts, deliveries or runs (each failed retry counts)', example: 0 })
  errors: number;
  @ApiProperty({ nullable: true, type: PluginErrorDto })
  last_error: PluginErrorDto | null;
}

export class PluginListDto {
  @ApiProperty({ description: 'Plugin API version of this service (SDK_API_VERSION)', example: '1.1.0' })
  sdk_api_version: string;
  @ApiProperty({ type: [PluginDto] })
  plugins: PluginDto[];
}
