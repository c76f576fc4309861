import { registerAs } from '@nestjs/config';
import { resolve } from 'node:path';
import { validateEnv } from './env.validation';

export const llmConfig = registerAs('llm', () => {
  const env = validateEnv(process.env);
  return {
    apiKey: env.OPENAI_API_KEY ?? null,
    baseUrl: env.OPENAI_BASE_URL ?? null,
    timeoutMs: env.OPENAI_TIMEOUT_MS ?? 120_000,
    maxRetries: env.OPENAI_MAX_RETRIES ?? 2,
    /** Provider id used for price look-ups when the base URL does not identify one. */
    provider: env.LLM_PROVIDER ?? 'openai',
    pricingFile: resolve(env.PRICING_FILE ?? 'config/pricing.json'),
    /** PRICING_FILE was set: a file that is not there stops the start (a typo would drop negotiated prices silently). */
    pricingFileRequired: env.PRICING_FILE !== undefined,
    /**
     * `refuse` (default): a call to a model with no known price is refused when a budget applies to
     * it, since its cost could not be held to the budget. `allow`: such calls pass (cost unknown).
     */
    unpricedUnderBudget: (env.LLM_UNPRICED_UNDER_BUDGET ?? 'refuse') as 'refuse' | 'allow',
  };
});
export type LlmConfig = ReturnType<typeof llmConfig>;
