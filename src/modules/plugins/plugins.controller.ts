import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SDK_API_VERSION } from '../../plugins/sdk';
import { AdminOnly } from '../auth/admin-only.decorator';
import { NoQueryDto } from '../usage/dto/usage-query.dto';
import { PluginListDto } from './dto/plugin.dto';
import { PluginRegistry } from './plugin-registry.service';

@ApiTags('plugins')
@ApiBearerAuth()
@AdminOnly()
@ApiForbiddenResponse({ description: 'The API key has scope "user"; the plugin list needs an admin key' })
@Controller('api/v1/plugins')
export class PluginsController {
  constructor(private readonly registry: PluginRegistry) {}

  @Get()
  @ApiOperation({
    summary: 'Every usage sink, alert notifier, export destination and task agent, built in or loaded',
    description: 'With its source, declared plugin API version, state and activity since this process started.',
  })
  @ApiOkResponse({ type: PluginListDto })
  list(@Query() _query: NoQueryDto): PluginListDto {
    return {
      sdk_api_version: SDK_API_VERSION,
      plugins: this.registry.list().map((p) => ({
        kind: p.kind,
        name: p.name,
        source: p.source,
        module: p.module,
        api_version: p.apiVersion,
        state: p.state,
        detail: p.detail,
        queue_depth: p.activity.queueDepth,
        records_written: p.activity.written,
        errors: p.activity.errors,
        last_error: p.activity.lastError ? { message: p.activity.lastError.message, at: new Date(p.activity.lastError.atMs).toISOString() } : null,
      })),
    };
  }
}
