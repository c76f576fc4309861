import { Injectable, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { MAX_MODEL_NAME_LENGTH } from '../../common/model-name';
import { nanosToUsdExact } from '../../common/money';
import { OpenAiErrorException, openAiError } from '../../common/openai-error';
import { parseUsageTags, UsageTags } from '../../common/usage-tags';
import type { Principal } from '../auth/principal';
import { USER_ID_PATTERN } from '../auth/api-key-file';
import type { TrackedCall, TrackedOutcome } from '../llm/llm-client';
import { LlmClientFactory } from '../llm/llm-client.factory';
import { TASK_ID_PATTERN } from '../usage/dto/usage-query.dto';
import { GatewayTaskOwners } from './gateway-task-owners.service';
import { GatewayUpstreams, ListedModel } from './gateway-upstreams.service';
import { GatewayEndpoint, isJsonObject, maxOutputTokens, outcomeOfResponse, promptCountJob, StreamAccumulator } from './gateway-usage';
import { SseEventSplitter } from './sse-events';

export const REQUEST_ID_HEADER = 'x-asa-request-id';
export const COST_HEADER = 'x-asa-cost-usd';
export const USER_HEADER = 'x-asa-user-id';
export const TASK_HEADER = 'x-asa-task-id';
export const TAGS_HEADER = 'x-asa-tags';

const UPSTREAM_PATHS: Record<GatewayEndpoint, string> = { chat: '/chat/completions', embeddings: '/embeddings', responses: '/responses' };

/**
 * Response headers of the upstream not passed on: hop-by-hop ones, what fetch has already undone
 * (compression, length), cookies, and the provider account's organization and project, which
 * belong to the service's configuration as its key does.
 */
const DROPPED_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'set-cookie',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'openai-organization',
  'openai-project',
]);

/** What a client that left before the upstream's answer came leaves to record: the prompt, counted locally. */
const LEFT_BEFORE_ANSWER: TrackedOutcome = { responseModel: null, tokens: null, completionText: '' };

/** Who a call is accounted to. */
interface Attribution {
  userId: string | null;
  taskId: string | null;
  tags: UsageTags | null;
}

/**
 * The OpenAI-compatible gateway: each call is admitted, timed, priced and recorded by LlmClient
 * (`track`), exactly like the agent's calls, while the request body goes upstream as the client
 * sent it and the response comes back as the upstream sent it (streams event by event).
 */
@Injectable()
export class GatewayService {
  private readonly logger = new Logger(GatewayService.name);

  constructor(
    private readonly upstreams: GatewayUpstreams,
    private readonly llm: LlmClientFactory,
    private readonly taskOwners: GatewayTaskOwners,
  ) {}

  models(): Promise<ListedModel[]> {
    return this.upstreams.listModels();
  }

  async forward(endpoint: GatewayEndpoint, body: unknown, req: FastifyRequest, reply: FastifyReply, principal: Principal): Promise<void> {
    reply.header(REQUEST_ID_HEADER, randomUUID()); // replaced by the usage record's id once the call is admitted
    if (!isJsonObject(body)) throw invalid('the request body must be a JSON object', null);
    const model = body.model;
    if (typeof model !== 'string' || model.trim() === '') throw invalid('you must provide a model parameter (a non-empty string)', 'model');
    if (model.length > MAX_MODEL_NAME_LENGTH) {
      throw invalid(`Invalid 'model': a model name is at most ${MAX_MODEL_NAME_LENGTH} characters (got ${model.length})`, 'model');
    }
    const outputAllowance = maxOutputTokens(endpoint, body); // refuses a malformed output limit before anything else
    const route = this.upstreams.resolve(model);
    if (!route) {
      throw new OpenAiErrorException(
        404,
        openAiError(404, `The model \`${model.slice(0, 200)}\` does not exist or is not routed by this gateway (see GATEWAY_FILE)`, {
          type: 'invalid_request_error',
          code: 'model_not_found',
          param: 'model',
        }),
      );
    }
    // Last before admission: a task id is claimed here, so a request refused above claims nothing.
    const who = await this.attribution(req, principal);

    const streamed = endpoint !== 'embeddings' && body.stream === true;
    let upstreamBody: Record<string, unknown> = route.upstreamModel === model ? body : { ...body, model: route.upstreamModel };
    const clientAskedUsage = isJsonObject(body.stream_options) && body.stream_options.include_usage === true;
    if (streamed && endpoint === 'chat' && !clientAskedUsage) {
      // Usage is always asked for, so a stream is priced from the provider's counts; the extra chunk is held back below.
      upstreamBody = { ...upstreamBody, stream_options: { ...(isJsonObject(body.stream_options) ? body.stream_options : {}), include_usage: true } };
    }

    // A client that leaves stops the upstream call (and is recorded as such).
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    // An upstream that goes quiet once its headers came is stopped too (the SDK's timeout ends at the headers).
    const stall = new AbortController();

    const call = await this.llm.forUpstream(route.upstream, who).track(
      {
        operation: endpoint, // the gateway's endpoints are named as the operations they record
        model: route.upstreamModel,
        prompt: promptCountJob(endpoint, body, route.upstreamModel),
        maxOutputTokens: outputAllowance,
        streamed,
        params: upstreamBody,
      },
      { signal: abort.signal },
    );
    reply.header(REQUEST_ID_HEADER, call.id);

    let res: Response;
    try {
      res = await call.run(() =>
        call.openai.post(UPSTREAM_PATHS[endpoint], { body: upstreamBody, ...call.requestOptions, signal: AbortSignal.any([abort.signal, stall.signal]) }).asResponse(),
      );
    } catch (err) {
      if (abort.signal.aborted) {
        await call.abandon(LEFT_BEFORE_ANSWER); // nobody is left to answer
        return;
      }
      await call.fail(err);
      throw upstreamError(err);
    }
    // The upstream's status and headers are passed on once its answer can be: for a plain call,
    // after its body was read whole (a body cut short is a 502 in the gateway's own JSON, not the
    // upstream's content type with an error object the reply could not send).
    const passStatusAndHeaders = () => {
      reply.code(res.status);
      res.headers.forEach((value, name) => {
        if (!DROPPED_HEADERS.has(name)) reply.header(name, value);
      });
    };

    const idleMs = call.openai.timeout;
    const answer = () => bodyChunks(res, idleMs, stall);
    if (streamed && !/^text\/event-stream\b/i.test(res.headers.get('content-type') ?? '')) {
      // Not a stream: passing it on as one would leave the client's SDK with nothing it can read.
      await this.refuseInvalidAnswer(call, `a stream was asked for, and the upstream answered ${res.status} with ${describeContentType(res)}`, answer);
    }
    if (!streamed) {
      let text: string;
      try {
        text = await readAll(answer());
      } catch (err) {
        if (abort.signal.aborted) {
          await call.abandon(LEFT_BEFORE_ANSWER);
          return;
        }
        await call.fail(err);
        const mapped = upstreamError(err);
        if (mapped !== err) throw mapped;
        throw new OpenAiErrorException(
          502,
          openAiError(502, `The upstream's answer broke off before its end: ${(err as Error).message}`, { code: 'upstream_unreachable' }),
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        // A 2xx whose body is not JSON (an HTML page of a proxy, nothing at all) is no answer: the client's SDK could not read it.
        return this.refuseInvalidAnswer(call, `the upstream answered ${res.status} with ${text.length === 0 ? 'an empty body' : `a body that is not JSON (${describeContentType(res)})`}`);
      }
      passStatusAndHeaders();
      const record = await call.succeed(outcomeOfResponse(endpoint, json));
      if (record?.costNanos !== null && record?.costNanos !== undefined) reply.header(COST_HEADER, nanosToUsdExact(record.costNanos));
      await reply.send(text);
      return;
    }
    passStatusAndHeaders();
    await reply.send(Readable.from(this.relay(call, answer(), endpoint === 'chat' ? 'chat' : 'responses', !clientAskedUsage, abort.signal)));
  }

  /** Records an upstream answer no client could use as `invalid_response` and answers 502 in OpenAI's shape. */
  private async refuseInvalidAnswer(call: TrackedCall, what: string, rest?: () => AsyncIterable<Uint8Array>): Promise<never> {
    if (rest) await readAll(rest()).catch(() => undefined); // let the connection go back to the pool
    await call.fail(new SyntaxError(what));
    throw new OpenAiErrorException(502, openAiError(502, `The upstream's answer could not be used: ${what}`, { code: 'upstream_invalid_response' }));
  }

  /**
   * Passes the upstream's events on one by one as they complete, reading usage on the way. The
   * usage-only chunk the gateway asked for is held back from a client that did not. The stream's
   * last word (`[DONE]`, the final Responses event) goes out only once the call's record is in the
   * journal, so a client that saw its stream end has a record that says so, even if the process is
   * killed right after. Ends the call's record: success, `abandoned` (the client left; tokens
   * estimated from what came), or a broken stream.
   */
  private async *relay(call: TrackedCall, chunks: AsyncIterable<Uint8Array>, kind: 'chat' | 'responses', holdUsage: boolean, clientGone: AbortSignal): AsyncGenerator<Buffer> {
    const acc = new StreamAccumulator(kind);
    const splitter = new SseEventSplitter();
    let final: Buffer | null = null;
    let ended = false;
    try {
      for await (const chunk of chunks) {
        for (const ev of splitter.push(chunk)) {
          const seen = acc.take(ev);
          if (seen.content) call.markFirstToken();
          if (seen.usageOnly && holdUsage) continue;
          if (seen.final) {
            final = ev.raw;
            break;
          }
          yield ev.raw;
        }
        // The stream's last word came: the call is over, whether or not the upstream closes the connection.
        if (final) break;
      }
      const rest = final ? null : splitter.rest();
      ended = true;
      if (acc.error !== null) {
        // An error the upstream reported inside a 200 stream: the client's SDK raises it; the record says so too.
        await call.fail(new APIError(undefined, { message: acc.error }, `the upstream reported an error mid-stream: ${acc.error}`, undefined), acc.outcome());
      } else {
        await call.succeed(acc.outcome());
      }
      if (rest && rest.length > 0) yield rest;
      if (final) yield final;
    } catch (err) {
      ended = true;
      if (clientGone.aborted) {
        await call.abandon(acc.outcome());
        return;
      }
      await call.fail(err, acc.outcome());
      this.logger.warn(`stream from the upstream broke after ${acc.outcome().completionText?.length ?? 0} characters: ${(err as Error).message}`);
      throw err;
    } finally {
      // Left without an error or an end: the response stream was destroyed, the client is gone.
      if (!ended) await call.abandon(acc.outcome());
    }
  }

  private async attribution(req: FastifyRequest, principal: Principal): Promise<Attribution> {
    const user = header(req, USER_HEADER);
    const task = header(req, TASK_HEADER);
    const tagsText = header(req, TAGS_HEADER);
    if (user !== null && !USER_ID_PATTERN.test(user)) throw invalid(`${USER_HEADER} must be 1-100 letters, digits or . _ : @ -`, null);
    if (task !== null && !TASK_ID_PATTERN.test(task)) throw invalid(`${TASK_HEADER} must be 1-64 letters, digits or . _ : -`, null);
    let tags: UsageTags | null = null;
    if (tagsText !== null) {
      try {
        tags = parseUsageTags(tagsText);
      } catch (err) {
        throw invalid(`${TAGS_HEADER}: ${(err as Error).message}`, null);
      }
    }
    if (principal.scope === 'admin') {
      // A task's calls belong to its user: an admin key naming a task may leave the user out (the
      // task's is taken) but may not put another user's calls under it, which would hide the
      // task's usage from its owner. A new task id is claimed for the user named (or for no user).
      const owner = task === null ? user : await this.taskOwners.claim(task, user);
      if (task !== null && user !== null && user !== owner) {
        throw forbidden(`task "${task}" belongs to ${owner === null ? 'no user' : `user "${owner}"`}; ${USER_HEADER} must name that user or be left out`);
      }
      return { userId: owner, taskId: task, tags };
    }
    if (user !== null && user !== principal.userId) {
      throw forbidden(`API key "${principal.keyName}" belongs to user "${principal.userId}"; only an admin key may set ${USER_HEADER} to another user`);
    }
    if (task !== null && (await this.taskOwners.claim(task, principal.userId)) !== principal.userId) {
      throw forbidden(`task "${task}" belongs to another user; a user key may attribute calls only to its own tasks (or a new task id, which becomes its own)`);
    }
    return { userId: principal.userId, taskId: task, tags };
  }
}

/**
 * The upstream's body, chunk by chunk. A pause longer than `idleMs` ends it with the SDK's timeout
 * error (a 504, recorded `timeout`) and stops the request through `stall`; leaving early (the
 * stream's last event came) closes it.
 */
async function* bodyChunks(res: Response, idleMs: number, stall: AbortController): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const it = (res.body as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  let whole = false;
  try {
    for (;;) {
      const quiet = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new APIConnectionTimeoutError({ message: `the upstream sent nothing for ${idleMs} ms` })), idleMs);
      });
      const next = await Promise.race([it.next(), quiet]).finally(() => clearTimeout(timer));
      if (next.done) {
        whole = true;
        return;
      }
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
    // Not read to its end (quiet too long, or nothing more needed): the request is stopped, so its connection is not held.
    if (!whole) stall.abort();
    void it.return?.().catch(() => undefined);
  }
}

async function readAll(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts).toString('utf8');
}

function describeContentType(res: Response): string {
  const type = res.headers.get('content-type');
  return type ? `content type ${type.slice(0, 100)}` : 'no content type';
}

function header(req: FastifyRequest, name: string): string | null {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || text.trim() === '' ? null : text.trim();
}

function invalid(message: string, param: string | null): OpenAiErrorException {
  return new OpenAiErrorException(400, openAiError(400, message, { param }));
}

function forbidden(message: string): OpenAiErrorException {
  return new OpenAiErrorException(403, openAiError(403, message, { code: 'attribution_denied' }));
}

/**
 * An upstream's error as the client should see it: its own status and error body when it
 * answered, 504 when it did not answer in time, 502 when it could not be reached.
 */
function upstreamError(err: unknown): unknown {
  if (err instanceof APIConnectionTimeoutError) {
    return new OpenAiErrorException(504, openAiError(504, 'The upstream did not answer in time', { type: 'timeout', code: 'upstream_timeout' }));
  }
  if (err instanceof APIConnectionError) {
    return new OpenAiErrorException(502, openAiError(502, `The upstream could not be reached: ${err.message}`, { code: 'upstream_unreachable' }));
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const body = isJsonObject(err.error) && typeof err.error.message === 'string' ? { error: err.error } : openAiError(err.status, err.message);
    const headers: Record<string, string> = {};
    for (const name of ['retry-after', 'retry-after-ms', 'x-should-retry']) {
      const value = err.headers?.get(name);
      if (value) headers[name] = value;
    }
    return new OpenAiErrorException(err.status, body as ConstructorParameters<typeof OpenAiErrorException>[1], headers);
  }
  return err;
}
