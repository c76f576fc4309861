import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { trace } from '@opentelemetry/api';
import OpenAI from 'openai';
import { llmConfig } from '../../config/llm.config';
import { LLM_ADMISSION_POLICIES, LlmAdmissionPolicy } from '../../plugins/sdk';
import { UsageJournal } from '../usage/journal/usage-journal.service';
import { UsageRecorder } from '../usage/usage-recorder.service';
import { LlmClient, LlmClientDeps } from './llm-client';
import { LLM_TRACER_NAME } from './llm-span-attributes';
import { PricingService } from './pricing/pricing.service';
import { TaskSpendReader } from './task-spend.reader';
import { TokenEstimator } from './token-estimator';
import type { UsageTags } from '../../common/usage-tags';

export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** An OpenAI-compatible server calls can be sent to; `openai` null when it has no key configured. */
export interface LlmUpstream {
  readonly openai: OpenAI | null;
  readonly provider: string;
  readonly baseUrl: string;
}

/**
 * Hands out LLM clients scoped to a task and/or user. All of them share one `OpenAI` instance
 * configured from the environment (OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_TIMEOUT_MS,
 * OPENAI_MAX_RETRIES), so any OpenAI-compatible server works.
 */
@Injectable()
export class LlmClientFactory {
  private readonly logger = new Logger(LlmClientFactory.name);
  private readonly deps: LlmClientDeps;
  private readonly upstreamDeps = new WeakMap<LlmUpstream, LlmClientDeps>();

  constructor(
    @Inject(llmConfig.KEY) config: ConfigType<typeof llmConfig>,
    pricing: PricingService,
    estimator: TokenEstimator,
    recorder: UsageRecorder,
    journal: UsageJournal,
    spend: TaskSpendReader,
    @Inject(LLM_ADMISSION_POLICIES) policies: LlmAdmissionPolicy[],
  ) {
    const baseURL = config.baseUrl ?? DEFAULT_OPENAI_BASE_URL;
    // A local OpenAI-compatible server usually needs no key; the real OpenAI endpoint does.
    const apiKey = config.apiKey ?? (config.baseUrl ? 'unused' : null);
    if (!apiKey) this.logger.warn('OPENAI_API_KEY is not set: LLM calls will be refused until it is');
    const openai = apiKey
      ? new OpenAI({
          apiKey,
          baseURL,
          timeout: config.timeoutMs,
          maxRetries: config.maxRetries,
          // explicit nulls: the SDK would otherwise read OPENAI_ORG_ID / OPENAI_PROJECT_ID behind our config's back
          organization: null,
          project: null,
          webhookSecret: null,
        })
      : null;
    this.deps = {
      openai,
      config,
      pricing,
      estimator,
      recorder,
      journal,
      policies,
      spend,
      tracer: trace.getTracer(LLM_TRACER_NAME),
      server: serverOf(baseURL),
    };
  }

  /** A client for a task (the seed's `LLMClient(task_id=...)`); with `maxCostUsd`, calls that could pass the budget are refused. */
  forTask(taskId: string, opts: { userId?: string | null; maxCostUsd?: number | null } = {}): LlmClient {
    return new LlmClient(this.deps, taskId, opts.userId ?? null, opts.maxCostUsd ?? null);
  }

  /**
   * A client for another OpenAI-compatible upstream than the environment's (the gateway's
   * routes): its own SDK instance, priced and recorded under its provider id.
   */
  forUpstream(upstream: LlmUpstream, scope: { taskId: string | null; userId: string | null; tags: UsageTags | null }): LlmClient {
    let deps = this.upstreamDeps.get(upstream);
    if (!deps) {
      deps = { ...this.deps, openai: upstream.openai, config: { ...this.deps.config, provider: upstream.provider }, server: serverOf(upstream.baseUrl) };
      this.upstreamDeps.set(upstream, deps);
    }
    return new LlmClient(deps, scope.taskId, scope.userId, null, scope.tags);
  }

  /** A client for calls made on behalf of a user, outside any task. */
  forUser(userId: string | null): LlmClient {
    return new LlmClient(this.deps, null, userId);
  }
}

function serverOf(baseURL: string): { address: string; port: number } | null {
  try {
    const u = new URL(baseURL);
    return { address: u.hostname, port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
  } catch {
    return null;
  }
}
