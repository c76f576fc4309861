import { DynamicModule, ModuleMetadata, Provider, Type } from '@nestjs/common';

/**
 * The module definition shared by every extension point (sinks, agents, admission policies): the
 * implementation classes become providers (so Nest injects their dependencies), `collect` gathers
 * them under one array token, and that token is exported. Used in `setExtras` of a
 * ConfigurableModuleBuilder.
 */
export function extensionPointDefinition(
  definition: DynamicModule,
  opts: { classes: Type[]; collect: Provider & { provide: symbol }; imports?: ModuleMetadata['imports']; global?: boolean },
): DynamicModule {
  return {
    ...definition,
    ...(opts.global ? { global: true } : {}),
    imports: [...(definition.imports ?? []), ...(opts.imports ?? [])],
    providers: [...(definition.providers ?? []), ...opts.classes, opts.collect],
    exports: [...(definition.exports ?? []), opts.collect.provide],
  };
}

/** Throws when two extensions share a name (names label logs, metrics and stored rows). */
export function assertUniqueNames(items: readonly { name: string }[], what: string): void {
  const names = new Set<string>();
  for (const { name } of items) {
    if (names.has(name)) throw new Error(`Two ${what}s are named "${name}"; ${what} names must be unique`);
    names.add(name);
  }
}
