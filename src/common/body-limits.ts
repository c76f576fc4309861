import { PayloadTooLargeException } from '@nestjs/common';
import { validateEnv } from '../config/env.validation';
import { isOpenAiPath } from './openai-error';

/** Every body of the service's own API (tasks, quotas, exports): Fastify's default, 1 MiB. */
export const API_MAX_BODY_BYTES = 1_048_576;
/** The gateway's default: an OpenAI request may carry base64 images or files, so more than the API. */
export const DEFAULT_GATEWAY_MAX_BODY_BYTES = 20 * 1_048_576;

export interface BodyLimits {
  api: number;
  gateway: number;
}

/** The limits of this process (GATEWAY_MAX_BODY_BYTES; the API's is fixed). */
export function bodyLimits(env: NodeJS.ProcessEnv = process.env): BodyLimits {
  return { api: API_MAX_BODY_BYTES, gateway: validateEnv(env).GATEWAY_MAX_BODY_BYTES ?? DEFAULT_GATEWAY_MAX_BODY_BYTES };
}

const mib = (bytes: number) => (bytes % 1_048_576 === 0 ? `${bytes / 1_048_576} MiB` : `${bytes} bytes`);

/**
 * The 413 for a body of `bytes` sent to `url`, or undefined when it is within that route's limit
 * (the gateway's under /v1, the API's elsewhere).
 */
export function bodyTooLarge(limits: BodyLimits, url: string | undefined, bytes: number): PayloadTooLargeException | undefined {
  const gateway = isOpenAiPath(url);
  const limit = gateway ? limits.gateway : limits.api;
  if (bytes <= limit) return undefined;
  return new PayloadTooLargeException(`the request body is larger than this endpoint's limit of ${mib(limit)}${gateway ? ' (GATEWAY_MAX_BODY_BYTES)' : ''}`);
}
