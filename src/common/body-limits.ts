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

/** The limit of the route a request is for: the gateway's under /v1, the API's elsewhere. */
export const bodyLimitOf = (limits: BodyLimits, url: string | undefined): number => (isOpenAiPath(url) ? limits.gateway : limits.api);

const mib = (bytes: number) => (bytes % 1_048_576 === 0 ? `${bytes / 1_048_576} MiB` : `${bytes} bytes`);

export function bodyTooLarge(limit: number, url: string | undefined): PayloadTooLargeException {
  const setting = isOpenAiPath(url) ? ' (GATEWAY_MAX_BODY_BYTES)' : '';
  return new PayloadTooLargeException(`the request body is larger than this endpoint's limit of ${mib(limit)}${setting}`);
}
