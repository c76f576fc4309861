import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import nodeFetch from 'node-fetch';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import OpenAI from 'openai';
import { gatewayConfig, GatewayRoute, GatewayUpstreamConfig } from '../../config/gateway.config';
import { LlmUpstream } from '../llm/llm-client.factory';

export interface GatewayUpstream extends LlmUpstream {
  readonly name: string;
}

/** Where a model's calls go, and the model name the upstream is asked for. */
export interface ResolvedModel {
  upstream: GatewayUpstream;
  upstreamModel: string;
}

/** One entry of GET /v1/models. */
export interface ListedModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

const MODEL_LIST_TIMEOUT_MS = 10_000;

/**
 * The gateway's upstreams (one OpenAI SDK instance each, built once) and its routes from
 * GATEWAY_FILE: a model goes to the first route that matches it.
 */
@Injectable()
export class GatewayUpstreams {
  private readonly logger = new Logger(GatewayUpstreams.name);
  private readonly upstreams = new Map<string, GatewayUpstream>();
  private readonly routes: readonly GatewayRoute[];

  constructor(@Inject(gatewayConfig.KEY) config: ConfigType<typeof gatewayConfig>) {
    for (const u of config.upstreams) this.upstreams.set(u.name, build(u));
    this.routes = config.routes;
  }

  /** The upstream of a model, or null when no route takes it. */
  resolve(model: string): ResolvedModel | null {
    for (const route of this.routes) {
      const upstreamModel = matchRoute(route.pattern, model);
      if (upstreamModel !== null) return { upstream: this.upstreams.get(route.upstream)!, upstreamModel };
    }
    return null;
  }

  /**
   * Exact routes as they are, and for each wildcard route the upstream's own list (under the
   * route's prefix, and only the names the route takes). An upstream that cannot list its
   * models is left out and logged: the list is a convenience, never a reason to fail.
   */
  async listModels(): Promise<ListedModel[]> {
    const lists = await Promise.all(
      this.routes.map(async (route): Promise<ListedModel[]> => {
        const upstream = this.upstreams.get(route.upstream)!;
        if (!route.pattern.endsWith('*')) return [{ id: route.pattern, object: 'model', created: 0, owned_by: upstream.name }];
        if (!upstream.openai) return [];
        try {
          const page = await upstream.openai.models.list({ timeout: MODEL_LIST_TIMEOUT_MS, maxRetries: 0 });
          const prefix = route.pattern.endsWith('/*') ? route.pattern.slice(0, -1) : '';
          return page.data
            .map((m) => ({ id: prefix + m.id, object: 'model' as const, created: m.created ?? 0, owned_by: m.owned_by ?? upstream.name }))
            .filter((m) => matchRoute(route.pattern, m.id) !== null);
        } catch (err) {
          this.logger.warn(`GET /v1/models: upstream "${upstream.name}" did not list its models (${(err as Error).message})`);
          return [];
        }
      }),
    );
    const seen = new Set<string>();
    return lists.flat().filter((m) => (seen.has(m.id) ? false : (seen.add(m.id), true)));
  }
}

/**
 * The model name to send upstream when `pattern` takes `model`, else null. `ollama/*` takes
 * `ollama/llama3` and sends `llama3`; `gpt-4*` takes `gpt-4o` and sends it as it is.
 */
export function matchRoute(pattern: string, model: string): string | null {
  if (pattern === '*') return model;
  if (pattern.endsWith('/*')) {
    const prefix = pattern.slice(0, -1);
    return model.startsWith(prefix) && model.length > prefix.length ? model.slice(prefix.length) : null;
  }
  if (pattern.endsWith('*')) return model.startsWith(pattern.slice(0, -1)) ? model : null;
  return model === pattern ? model : null;
}

/**
 * The SDK's requests go through node-fetch on Node's own http client with kept-alive
 * connections: Node 20's built-in fetch costs about 1 ms more per call (docs/performance.md,
 * "Gateway"), which a gateway adds to every call it forwards. Its Response is what the SDK and the
 * gateway read: status, headers, text() and a body that is an async iterable of bytes.
 */
function upstreamFetch(baseUrl: string): NonNullable<ConstructorParameters<typeof OpenAI>[0]>['fetch'] {
  const agent = baseUrl.startsWith('https:') ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  return ((url: string, init: Record<string, unknown> = {}) =>
    nodeFetch(url, { ...(init as Parameters<typeof nodeFetch>[1]), agent, compress: true })) as unknown as NonNullable<ConstructorParameters<typeof OpenAI>[0]>['fetch'];
}

function build(u: GatewayUpstreamConfig): GatewayUpstream {
  const openai = u.apiKey
    ? new OpenAI({
        apiKey: u.apiKey,
        baseURL: u.baseUrl,
        timeout: u.timeoutMs,
        maxRetries: u.maxRetries,
        fetch: upstreamFetch(u.baseUrl),
        // explicit nulls: the SDK would otherwise read OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment
        organization: null,
        project: null,
        webhookSecret: null,
      })
    : null;
  return { name: u.name, openai, provider: u.provider, baseUrl: u.baseUrl };
}

