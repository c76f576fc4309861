import { Module } from '@nestjs/common';
import { LlmClientFactory } from './llm-client.factory';
import { LlmModuleBase } from './llm.module-definition';
import { PricingService } from './pricing/pricing.service';
import { TaskSpendReader } from './task-spend.reader';
import { TokenEstimator } from './token-estimator';

/**
 * LLM access for the whole service (global): `LlmClientFactory` hands out task/user-scoped
 * clients; `PricingService` prices calls. `LlmModule.forRoot({ admissionPolicies: [...] })` lists
 * the policies asked before every call (budgets, quotas).
 */
@Module({
  providers: [PricingService, TokenEstimator, TaskSpendReader, LlmClientFactory],
  exports: [LlmClientFactory, PricingService, TokenEstimator],
})
export class LlmModule extends LlmModuleBase {}
