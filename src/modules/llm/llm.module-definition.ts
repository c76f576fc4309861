import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { extensionPointDefinition } from '../../common/extension-point';
import { LLM_ADMISSION_POLICIES, LlmAdmissionPolicy } from '../../plugins/sdk';

export interface LlmModuleOptions {
  /** Nothing to configure beyond the extras today; kept as the options token for plugins to read. */
  readonly label?: string;
}

export interface LlmModuleExtras {
  /** Admission policy classes, asked in order before every LLM call (resolved by Nest, so they can inject). */
  admissionPolicies: Type<LlmAdmissionPolicy>[];
  /** Modules the policy classes depend on. */
  imports?: ModuleMetadata['imports'];
}

export const { ConfigurableModuleClass: LlmModuleBase, MODULE_OPTIONS_TOKEN: LLM_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<LlmModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras<LlmModuleExtras>({ admissionPolicies: [], imports: [] }, (definition, extras) =>
      extensionPointDefinition(definition, {
        classes: extras.admissionPolicies,
        collect: policiesProvider(extras.admissionPolicies),
        imports: extras.imports,
        global: true,
      }),
    )
    .build();

/** One array token for every admission policy (empty when none is configured). */
function policiesProvider(classes: Type<LlmAdmissionPolicy>[]): Provider & { provide: symbol } {
  return { provide: LLM_ADMISSION_POLICIES, inject: classes, useFactory: (...policies: LlmAdmissionPolicy[]) => policies };
}
