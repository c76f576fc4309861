import { Global, Module } from '@nestjs/common';
import { PluginRegistry } from './plugin-registry.service';
import { PluginsController } from './plugins.controller';

/**
 * The plugin registry and `GET /api/v1/plugins`. Global: every extension point's module registers
 * its built-ins and loads its plugins through the one PluginRegistry.
 */
@Global()
@Module({
  controllers: [PluginsController],
  providers: [PluginRegistry],
  exports: [PluginRegistry],
})
export class PluginsModule {}
