/**
 * SIMULATOR: a local, OpenAI-compatible HTTP server. It is NOT a model and NOT a provider.
 *
 * It speaks enough of the OpenAI REST protocol (chat completions and the Responses API, plain
 * and streamed as SSE, embeddings, model list) for the official `openai` SDK to talk to it, and answers with whatever
 * the caller's `respond` function scripts. Tests and the offline demo point `OPENAI_BASE_URL` at
 * it; the service itself never starts it unless explicitly asked. Every response carries the
 * header `x-simulator: asa-backend`, and chat responses say `system_fingerprint: "asa-simulator"`,
 * so a simulated answer can never be mistaken for a real one.
 */
import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SimulatedRequest {
  path: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, string | string[] | undefined>;
}

export interface SimulatedReply {
  /** Assistant message text (chat). */
  content?: string;
  /** Response model (default: the requested one). */
  model?: string;
  /**
   * Token counts to report. `undefined`: the server computes plausible counts (words ≈ tokens);
   * `null`: the response carries no usage at all (as some OpenAI-compatible servers do).
   */
  usage?: {
    prompt_tokens: number;
    completion_tokens: number;
    cached_tokens?: number;
    reasoning_tokens?: number;
    cache_write_tokens?: number;
  } | null;
  /** Answer with this HTTP error, in OpenAI's error shape. */
  error?: { status: number; message?: string; type?: string };
  /** Wait this long before answering (for timeouts and aborts). */
  delayMs?: number;
  /** Pause between stream chunks. */
  chunkDelayMs?: number;
  /** Streams only: cut the connection after this many content chunks (a stream broken midway). */
  breakStreamAfterChunks?: number;
  /** Chat only: `finish_reason` of the choice (default `stop`). */
  finishReason?: 'stop' | 'length' | 'content_filter';
}

export type Responder = (req: SimulatedRequest) => SimulatedReply | Promise<SimulatedReply>;

export interface SimulatorHandle {
  /** Base URL for the OpenAI SDK, e.g. `http://127.0.0.1:PORT/v1`. */
  baseUrl: string;
  /** Every request received, in order (including ones answered with an error). */
  requests: SimulatedRequest[];
  close(): Promise<void>;
}

export const SIMULATOR_HEADER = 'x-simulator';
export const SIMULATOR_FINGERPRINT = 'asa-simulator';

/** Models listed by `GET /v1/models` besides every model requested so far. */
const LISTED_MODELS = ['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small'];

const DEFAULT_EMBEDDING_DIMENSIONS = 8;
/**
 * Largest request body taken; past it the answer is a 413, as OpenAI's. Above the gateway's default
 * GATEWAY_MAX_BODY_BYTES (20 MiB), so whatever a gateway with its defaults forwards can be tried
 * here; not the 256 MiB the gateway may be set to: the body is held and parsed as one string, and a
 * test tool that takes a gigabyte of memory for one call is worse than one that refuses it.
 */
export const SIMULATOR_MAX_BODY_BYTES = 32 * 1024 * 1024;

export function startOpenAiCompatibleServer(opts: {
  respond: Responder;
  port?: number;
  host?: string;
}): Promise<SimulatorHandle> {
  const host = opts.host ?? '127.0.0.1';
  const requests: SimulatedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const seenModels = new Set<string>(LISTED_MODELS);
  let counter = 0;

  const sleep = (ms: number, res: ServerResponse) =>
    new Promise<boolean>((resolve) => {
      if (ms <= 0) return resolve(!res.destroyed);
      const t = setTimeout(() => {
        timers.delete(t);
        res.off('close', onClose);
        resolve(!res.destroyed);
      }, ms);
      const onClose = () => {
        clearTimeout(t);
        timers.delete(t);
        resolve(false);
      };
      timers.add(t);
      res.once('close', onClose);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader(SIMULATOR_HEADER, 'asa-backend');
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';

    if (method === 'GET' && (path === '/v1/models' || path === '/models')) {
      requests.push({ path, body: null, headers: { ...req.headers } });
      return sendJson(res, 200, {
        object: 'list',
        data: [...seenModels].map((id) => ({ id, object: 'model', created: 0, owned_by: 'asa-simulator' })),
      });
    }

    const isChat = path === '/v1/chat/completions' || path === '/chat/completions';
    const isEmbeddings = path === '/v1/embeddings' || path === '/embeddings';
    const isResponses = path === '/v1/responses' || path === '/responses';
    if (!isChat && !isEmbeddings && !isResponses) {
      return sendError(res, 404, `Unknown route ${method} ${path} on the simulator`, 'invalid_request_error');
    }
    if (method !== 'POST') return sendError(res, 405, `Use POST for ${path}`, 'invalid_request_error');

    let body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    try {
      const text = await readBody(req);
      if (text === null) {
        return sendError(res, 413, `Request body is larger than the simulator's limit of ${SIMULATOR_MAX_BODY_BYTES / 1024 / 1024} MiB`, 'invalid_request_error');
      }
      body = JSON.parse(text || 'null');
    } catch (err) {
      return sendError(res, 400, `Request body is not valid JSON: ${(err as Error).message}`, 'invalid_request_error');
    }
    const simulated: SimulatedRequest = { path, body, headers: { ...req.headers } };
    requests.push(simulated);
    if (!body || typeof body !== 'object' || typeof body.model !== 'string' || body.model === '') {
      return sendError(res, 400, 'you must provide a model parameter', 'invalid_request_error');
    }
    if (isEmbeddings && !isEmbeddingInput(body.input)) {
      return sendError(res, 400, "'input' is required: a non-empty string, an array of strings, or an array of token ids", 'invalid_request_error', 'input');
    }
    const malformed = isChat ? malformedMessages(body.messages) : isResponses ? malformedResponsesInput(body.input) : null;
    if (malformed) return sendError(res, 400, malformed.message, 'invalid_request_error', malformed.param);
    seenModels.add(body.model);

    let reply: SimulatedReply;
    try {
      reply = (await opts.respond(simulated)) ?? {};
    } catch (err) {
      return sendError(res, 500, `simulator responder failed: ${(err as Error).message}`, 'server_error');
    }
    if (reply.delayMs && !(await sleep(reply.delayMs, res))) return;
    if (reply.error) {
      return sendError(res, reply.error.status, reply.error.message ?? `Simulated error ${reply.error.status}`, reply.error.type ?? errorTypeFor(reply.error.status));
    }
    const id = ++counter;
    if (isEmbeddings) return sendJson(res, 200, embeddingResponse(body, reply));
    if (isResponses) {
      if (body.stream === true) return streamResponse(res, body, reply, id, sleep);
      return sendJson(res, 200, responsesResponse(body, reply, id, 'completed'));
    }
    if (body.stream === true) return streamChat(res, body, reply, id, sleep);
    return sendJson(res, 200, chatResponse(body, reply, id));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, `simulator failure: ${String(err)}`, 'server_error');
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const { port } = server.address() as AddressInfo;
      resolve({
        baseUrl: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            timers.forEach((t) => clearTimeout(t));
            timers.clear();
            sockets.forEach((s) => s.destroy());
            server.close(() => done());
          }),
      });
    });
  });
}

// --- responses --------------------------------------------------------------------------------

/** Rough token count for simulated usage: words and punctuation runs. */
export function simulatedTokenCount(text: string): number {
  return (text.match(/[A-Za-z0-9_]+|[^\sA-Za-z0-9_]/g) ?? []).length;
}

function promptText(body: any): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  return messages
    .map((m) => (typeof m?.content === 'string' ? m.content : Array.isArray(m?.content) ? m.content.map((p: any) => p?.text ?? '').join(' ') : ''))
    .join('\n');
}

function usageObject(body: any, reply: SimulatedReply, content: string) {
  const u = reply.usage ?? {
    prompt_tokens: simulatedTokenCount(promptText(body)) + 3 * (Array.isArray(body?.messages) ? body.messages.length : 0),
    completion_tokens: simulatedTokenCount(content),
  };
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.prompt_tokens + u.completion_tokens,
    prompt_tokens_details: {
      cached_tokens: u.cached_tokens ?? 0,
      audio_tokens: 0,
      ...(u.cache_write_tokens !== undefined ? { cache_write_tokens: u.cache_write_tokens } : {}),
    },
    completion_tokens_details: {
      reasoning_tokens: u.reasoning_tokens ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function replyContent(reply: SimulatedReply): string {
  return reply.content ?? 'This is a simulated answer.';
}

/** The fields a chat completion and each of its stream chunks share. */
function envelope(object: 'chat.completion' | 'chat.completion.chunk', body: any, reply: SimulatedReply, n: number) {
  return {
    id: `chatcmpl-sim-${n}`,
    object,
    created: Math.floor(Date.now() / 1000),
    model: reply.model ?? body.model,
    system_fingerprint: SIMULATOR_FINGERPRINT,
    service_tier: 'default',
  };
}

function chatResponse(body: any, reply: SimulatedReply, n: number) {
  const content = replyContent(reply);
  return {
    ...envelope('chat.completion', body, reply, n),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: reply.finishReason ?? 'stop',
      },
    ],
    ...(reply.usage === null ? {} : { usage: usageObject(body, reply, content) }),
  };
}

/** Splits text into stream pieces that concatenate back to exactly the text. */
function pieces(text: string): string[] {
  return text.match(/\s*\S+/g) ?? (text ? [text] : []);
}

async function streamChat(
  res: ServerResponse,
  body: any,
  reply: SimulatedReply,
  n: number,
  sleep: (ms: number, res: ServerResponse) => Promise<boolean>,
): Promise<void> {
  const content = replyContent(reply);
  const includeUsage = body?.stream_options?.include_usage === true;
  const base = envelope('chat.completion.chunk', body, reply, n);
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    ...base,
    choices,
    ...(includeUsage ? { usage: null } : {}),
    ...extra,
  });
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  const send = (data: unknown) =>
    new Promise<void>((resolve) => {
      res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`, () => resolve());
    });
  // Cut the connection only after what was sent reached the socket, so the client sees the chunks, then the break.
  const cut = async (lastWrite: Promise<void>) => {
    await lastWrite;
    res.socket?.destroy();
    res.destroy();
  };
  const gap = reply.chunkDelayMs ?? 0;

  let last = send(chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]));
  let sent = 0;
  for (const piece of pieces(content)) {
    if (gap > 0 && !(await sleep(gap, res))) return;
    if (res.destroyed) return;
    if (reply.breakStreamAfterChunks !== undefined && sent >= reply.breakStreamAfterChunks) return cut(last);
    last = send(chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]));
    sent++;
  }
  if (reply.breakStreamAfterChunks !== undefined && sent >= reply.breakStreamAfterChunks) return cut(last);
  if (gap > 0 && !(await sleep(gap, res))) return;
  void send(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: reply.finishReason ?? 'stop' }]));
  if (includeUsage && reply.usage !== null) {
    void send({ ...base, choices: [], usage: usageObject(body, reply, content) });
  }
  void send('[DONE]');
  res.end();
}

// --- Responses API ----------------------------------------------------------------------------

function responsesInputText(body: any): string {
  const input = body?.input;
  const parts: string[] = typeof body?.instructions === 'string' ? [body.instructions] : [];
  if (typeof input === 'string') parts.push(input);
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item?.content === 'string') parts.push(item.content);
      else if (Array.isArray(item?.content)) parts.push(item.content.map((p: any) => p?.text ?? '').join(' '));
    }
  }
  return parts.join('\n');
}

function responsesUsage(body: any, reply: SimulatedReply, content: string) {
  const u = reply.usage ?? { prompt_tokens: simulatedTokenCount(responsesInputText(body)), completion_tokens: simulatedTokenCount(content) };
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.cached_tokens ?? 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: u.reasoning_tokens ?? 0 },
    total_tokens: u.prompt_tokens + u.completion_tokens,
  };
}

function responsesResponse(body: any, reply: SimulatedReply, n: number, status: 'in_progress' | 'completed') {
  const content = replyContent(reply);
  const done = status === 'completed';
  return {
    id: `resp_sim_${n}`,
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status,
    model: reply.model ?? body.model,
    output: done
      ? [{ type: 'message', id: `msg_sim_${n}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: content, annotations: [] }] }]
      : [],
    usage: done && reply.usage !== null ? responsesUsage(body, reply, content) : null,
  };
}

/** The Responses API's stream: named events, usage only in the final `response.completed`. */
async function streamResponse(
  res: ServerResponse,
  body: any,
  reply: SimulatedReply,
  n: number,
  sleep: (ms: number, res: ServerResponse) => Promise<boolean>,
): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let seq = 0;
  const send = (type: string, data: Record<string, unknown>) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  const content = replyContent(reply);
  const gap = reply.chunkDelayMs ?? 0;
  send('response.created', { response: responsesResponse(body, reply, n, 'in_progress') });
  for (const piece of pieces(content)) {
    if (gap > 0 && !(await sleep(gap, res))) return;
    if (res.destroyed) return;
    send('response.output_text.delta', { item_id: `msg_sim_${n}`, output_index: 0, content_index: 0, delta: piece });
  }
  send('response.output_text.done', { item_id: `msg_sim_${n}`, output_index: 0, content_index: 0, text: content });
  send('response.completed', { response: responsesResponse(body, reply, n, 'completed') });
  res.end();
}

/** What OpenAI takes as embeddings input: a non-empty string, or a non-empty array of strings, token ids or token id arrays. */
function isEmbeddingInput(input: unknown): boolean {
  if (typeof input === 'string') return input !== '';
  if (!Array.isArray(input) || input.length === 0) return false;
  return input.every((x) => typeof x === 'string' || Number.isInteger(x) || (Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t))));
}

function embeddingResponse(body: any, reply: SimulatedReply) {
  const inputs: unknown[] = Array.isArray(body.input) && !body.input.every((x: unknown) => typeof x === 'number') ? body.input : [body.input];
  const dims = Number.isInteger(body.dimensions) && body.dimensions > 0 ? body.dimensions : DEFAULT_EMBEDDING_DIMENSIONS;
  const data = inputs.map((input, index) => {
    const vector = deterministicVector(JSON.stringify(input), dims);
    return {
      object: 'embedding',
      index,
      embedding: body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
    };
  });
  const promptTokens =
    reply.usage === undefined
      ? inputs.reduce<number>((n, i) => n + (typeof i === 'string' ? simulatedTokenCount(i) : Array.isArray(i) ? i.length : 0), 0)
      : (reply.usage?.prompt_tokens ?? 0);
  return {
    object: 'list',
    data,
    model: reply.model ?? body.model,
    ...(reply.usage === null ? {} : { usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } }),
  };
}

/** A unit vector derived from the input, so equal inputs get equal embeddings. */
function deterministicVector(seed: string, dims: number): number[] {
  const out: number[] = [];
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < dims; i++) {
    if ((i * 2) % block.length === 0 && i > 0) block = createHash('sha256').update(block).digest();
    out.push(block.readUInt16BE((i * 2) % block.length) / 65535 - 0.5);
  }
  const norm = Math.sqrt(out.reduce((s, x) => s + x * x, 0)) || 1;
  return out.map((x) => Math.fround(x / norm));
}

// --- plumbing ---------------------------------------------------------------------------------

/**
 * The request body, or null when it is over SIMULATOR_MAX_BODY_BYTES. The rest of an oversized
 * body is still read (and dropped), so the client, still sending, gets the 413 rather than a
 * connection closed under it.
 */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > SIMULATOR_MAX_BODY_BYTES) parts.length = 0;
      else parts.push(c);
    });
    req.on('end', () => resolve(size > SIMULATOR_MAX_BODY_BYTES ? null : Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  if (res.destroyed) return;
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, type: string, param: string | null = null): void {
  sendJson(res, status, { error: { message, type, param, code: status === 429 ? 'rate_limit_exceeded' : null } });
}

/** Why chat `messages` cannot be answered, as OpenAI says it: not a non-empty array of objects with a string role. */
function malformedMessages(messages: unknown): { message: string; param: string } | null {
  if (!Array.isArray(messages)) return { message: "'messages' is required: an array of message objects", param: 'messages' };
  if (messages.length === 0) return { message: "'messages' must not be empty", param: 'messages' };
  const bad = messages.findIndex((m) => typeof m !== 'object' || m === null || Array.isArray(m) || typeof (m as { role?: unknown }).role !== 'string');
  if (bad === -1) return null;
  return { message: `Invalid 'messages[${bad}]': expected an object with a string 'role'`, param: `messages[${bad}]` };
}

/** Why a Responses call's `input` cannot be answered: neither a non-empty string nor a non-empty array of item objects. */
function malformedResponsesInput(input: unknown): { message: string; param: string } | null {
  if (typeof input === 'string' && input !== '') return null;
  if (!Array.isArray(input) || input.length === 0) return { message: "'input' is required: a non-empty string or a non-empty array of input items", param: 'input' };
  const bad = input.findIndex((item) => typeof item !== 'object' || item === null || Array.isArray(item));
  return bad === -1 ? null : { message: `Invalid 'input[${bad}]': expected an input item object`, param: `input[${bad}]` };
}

function errorTypeFor(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
