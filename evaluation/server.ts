/**
 * An SGLang-compatible HTTP server over a Backend (node:http, no framework):
 *   POST /v1/chat/completions   OpenAI chat (messages → assistant message)
 *   POST /v1/completions        OpenAI text completion
 *   POST /generate              SGLang's native API ({text | input_ids, sampling_params})
 *   GET  /v1/models, /health, /get_model_info
 * Every generation goes through one continuous-batching Scheduler, fair across requests.
 *
 * Limits, as SGLang and vLLM have them: an optional API key (Bearer token, every route but
 * /health), JSON bodies only (Content-Type: application/json), a body size and a body time
 * limit, a cap on prompts per request and on the waiting queue (503 with Retry-After), and
 * prompts far past the context refused after tokenizing a bounded prefix. Large batches are
 * tokenized in slices, letting other requests through in between.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Backend, SamplingParams } from './backend.ts';
import { QueueFullError, Scheduler, type GenerationRequest, type GenerationResult } from './scheduler.ts';
import {
  ApiError, ChatRequest, CompletionRequest, GenerateRequest, messageText, parseBody, stopList,
} from './api.ts';

export interface ServerOptions {
  backend: Backend;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  maxBatch?: number;
  admitWaitMs?: number;
  /** Seeds requests that give none: request k gets seed + k. */
  seed?: number;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** A request body must arrive within this many ms of its headers (default 30 s); then 408 and the connection is closed. */
  bodyTimeoutMs?: number;
  /** Most prompts in one /generate request (default 4096); past it, 400. */
  maxPromptsPerRequest?: number;
  /** Most sequences waiting for a place in the batch (default 16384); past it, 503 with Retry-After. */
  maxWaiting?: number;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
}

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_PROMPTS_PER_REQUEST = 4096;
export const DEFAULT_MAX_WAITING = 16_384;
/** Tokens a prefix may count beyond what the whole text would (a word cut in two). */
const PREFIX_SLACK = 16;
/** How long the event loop may be held by tokenizing or checking one request before other work gets a turn. */
const SLICE_MS = 8;

export interface RunningServer {
  url: string;
  port: number;
  scheduler: Scheduler;
  /** Stops accepting, lets requests in flight finish (up to graceMs), then closes. The backend stays open: its owner closes it. */
  close(graceMs?: number): Promise<void>;
}

type Handler = (body: unknown, signal: AbortSignal) => Promise<unknown>;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { backend } = opts;
  const maxPrompts = opts.maxPromptsPerRequest ?? DEFAULT_MAX_PROMPTS_PER_REQUEST;
  const maxWaiting = opts.maxWaiting ?? DEFAULT_MAX_WAITING;
  if (maxPrompts > maxWaiting) {
    throw new Error(`the waiting queue (${maxWaiting}) must hold at least one whole request (${maxPrompts} prompts): raise the queue or lower the prompts per request`);
  }
  const scheduler = new Scheduler(backend, { maxBatch: opts.maxBatch, admitWaitMs: opts.admitWaitMs, maxWaiting });
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const keyDigest = opts.apiKey ? digest(opts.apiKey) : undefined;
  let seedCounter = opts.seed ?? 0;
  const created = Math.floor(Date.now() / 1000);
  const inflight = new Set<AbortController>();

  const sampling = (b: { temperature?: number; top_p?: number; top_k?: number; seed?: number }): SamplingParams => ({
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: b.top_k === undefined || b.top_k < 0 ? 0 : b.top_k,
    seed: b.seed ?? seedCounter++,
  });

  /**
   * The number of new tokens to allow: what was asked, capped to what the context leaves after
   * the prompt (generation then stops with finish reason `length`). One long answer never turns
   * a request into an error; only a prompt that fills the context alone is refused.
   */
  const budget = (promptLen: number, asked: number | undefined, _field: string, promptField: string): number => {
    const room = backend.contextLength - promptLen;
    if (room <= 0) {
      throw new ApiError(400, `${promptField}: the prompt has ${promptLen} tokens but the model's context is ${backend.contextLength}: shorten it`, promptField);
    }
    return asked === undefined ? room : Math.min(asked, room);
  };

  const tooLong = (field: string, atLeast: number) =>
    new ApiError(400, `${field}: the prompt has more than ${atLeast} tokens but the model's context is ${backend.contextLength}: shorten it`, field);

  /**
   * Tokens of `text`, but refused without tokenizing it whole when a prefix already holds
   * more than the context: the work is bounded by the context, not by the text.
   */
  const encodeBounded = (text: string, field: string): number[] => {
    const over = tokensPastContext(text, backend.contextLength, PREFIX_SLACK, (t) => backend.encode(t));
    if (over !== undefined) throw tooLong(field, over);
    return backend.encode(text);
  };

  /** Token-id prompts must lie inside the vocabulary. */
  const checkIds = (ids: number[], field: string): number[] => {
    const i = ids.findIndex((t) => t >= backend.vocabSize);
    if (i >= 0) throw new ApiError(400, `${field}[${i}]: token id ${ids[i]} is outside the vocabulary [0, ${backend.vocabSize})`, `${field}[${i}]`);
    return ids;
  };

  const tokenEntry = (id: number, logprob: number) => {
    const token = backend.decode([id]);
    return { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  };
  /** OpenAI chat logprobs: each generated token with, when asked, the most likely tokens at its step. */
  const logprobContent = (r: GenerationResult) =>
    r.tokenIds.map((id, i) => ({
      ...tokenEntry(id, r.logprobs[i]),
      top_logprobs: (r.topLogprobs?.[i] ?? []).map((t) => tokenEntry(t.token, t.logprob)),
    }));
  const usage = (r: GenerationResult) => ({
    prompt_tokens: r.promptTokens,
    completion_tokens: r.tokenIds.length,
    total_tokens: r.promptTokens + r.tokenIds.length,
  });
  const id = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

  const chat: Handler = async (raw, signal) => {
    const body = parseBody(ChatRequest, raw);
    const turns = body.messages.map((m) => ({ role: m.role, content: messageText(m.content) }));
    // The contents alone already past the context: refused before the template and the whole text are tokenized.
    const slack = PREFIX_SLACK + 2 * turns.length;
    const over = tokensPastContext(turns.map((t) => t.content).join('\n'), backend.contextLength, slack, (t) => backend.encode(t));
    if (over !== undefined) throw tooLong('messages', over);
    const promptIds = backend.encodeChat(turns);
    const asked = body.max_completion_tokens ?? body.max_tokens;
    const r = await scheduler.submit({
      promptIds,
      maxNewTokens: budget(promptIds.length, asked, body.max_completion_tokens ? 'max_completion_tokens' : 'max_tokens', 'messages'),
      sampling: sampling(body),
      stop: stopList(body.stop),
      signal,
      topLogprobs: body.logprobs ? body.top_logprobs : undefined,
    });
    return {
      id: id('chatcmpl'),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: backend.name,
      choices: [{
        index: 0,
        message: { role: 'assistant', content: r.text },
        logprobs: body.logprobs ? { content: logprobContent(r) } : null,
        finish_reason: r.finishReason,
        matched_stop: r.matchedStop ?? null,
      }],
      usage: usage(r),
    };
  };

  const completion: Handler = async (raw, signal) => {
    const body = parseBody(CompletionRequest, raw);
    const promptIds = typeof body.prompt === 'string' ? encodeBounded(body.prompt, 'prompt') : checkIds(body.prompt, 'prompt');
    const r = await scheduler.submit({
      promptIds,
      maxNewTokens: budget(promptIds.length, body.max_tokens ?? Math.min(16, backend.contextLength - promptIds.length), 'max_tokens', 'prompt'),
      sampling: sampling(body),
      stop: stopList(body.stop),
      signal,
      topLogprobs: typeof body.logprobs === 'number' ? body.logprobs : undefined,
    });
    // Legacy completions: top_logprobs is one {token text: logprob} object per token.
    const lp = body.logprobs === undefined || body.logprobs === false ? null : {
      tokens: r.tokenIds.map((t) => backend.decode([t])),
      token_logprobs: r.logprobs,
      top_logprobs: r.topLogprobs ? r.topLogprobs.map((top) => Object.fromEntries(top.map((t) => [backend.decode([t.token]), t.logprob]))) : null,
      text_offset: null,
    };
    return {
      id: id('cmpl'),
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: backend.name,
      choices: [{ index: 0, text: r.text, logprobs: lp, finish_reason: r.finishReason, matched_stop: r.matchedStop ?? null }],
      usage: usage(r),
    };
  };

  const generate: Handler = async (raw, signal) => {
    // The prompt count and the queue's room are checked before the body is validated or tokenized.
    const field = raw && typeof raw === 'object' && 'text' in raw ? 'text' : 'input_ids';
    const list = (raw as Record<string, unknown> | null)?.[field];
    const count = Array.isArray(list) && (field === 'text' || Array.isArray(list[0])) ? list.length : 1;
    if (count > maxPrompts) {
      throw new ApiError(400, `${field}: ${count} prompts in one request; at most ${maxPrompts}: split the batch into several requests`, field);
    }
    if (count > scheduler.room) throw queueFull(new QueueFullError(`the waiting queue is full (${count} prompts asked, room for ${scheduler.room}): retry later`, 1));
    const body = parseBody(GenerateRequest, raw);
    const sp = body.sampling_params ?? {};
    const batched = Array.isArray(body.text) || Array.isArray(body.input_ids?.[0]);
    const prompts: number[][] = [];
    const slice = new Slicer(signal);
    if (body.text !== undefined) {
      const texts = Array.isArray(body.text) ? body.text : [body.text];
      for (let i = 0; i < texts.length; i++) {
        await slice.turn();
        prompts.push(encodeBounded(texts[i], batched ? `text[${i}]` : 'text'));
      }
    } else {
      const lists = batched ? body.input_ids as number[][] : [body.input_ids as number[]];
      for (let i = 0; i < lists.length; i++) {
        await slice.turn();
        prompts.push(checkIds(lists[i], batched ? `input_ids[${i}]` : 'input_ids'));
      }
    }
    const base = sampling(sp);
    const stop = stopList(sp.stop);
    // Every prompt is checked before any is started.
    const reqs: GenerationRequest[] = [];
    for (let i = 0; i < prompts.length; i++) {
      if (i % 1024 === 0) await slice.turn();
      const ids = prompts[i];
      reqs.push({
        promptIds: ids,
        maxNewTokens: budget(ids.length, sp.max_new_tokens ?? Math.min(128, backend.contextLength - ids.length), 'sampling_params.max_new_tokens', field),
        sampling: { ...base, seed: base.seed + i },
        stop,
        stopTokenIds: sp.stop_token_ids,
      });
    }
    const results = await scheduler.submitAll(reqs, { signal });
    const out = results.map((r) => ({
      text: r.text,
      output_ids: r.tokenIds,
      meta_info: {
        id: id('gen'),
        prompt_tokens: r.promptTokens,
        completion_tokens: r.tokenIds.length,
        finish_reason: r.finishReason === 'length'
          ? { type: 'length', length: r.tokenIds.length }
          : { type: 'stop', matched: r.matchedStop ?? null },
        ...(body.return_logprob ? { output_token_logprobs: r.tokenIds.map((t, k) => [r.logprobs[k], t, null]) } : {}),
      },
    }));
    return batched ? out : out[0];
  };

  const routes: Record<string, Handler> = {
    'POST /v1/chat/completions': chat,
    'POST /v1/completions': completion,
    'POST /generate': generate,
    'GET /v1/models': async () => ({
      object: 'list',
      data: [{ id: backend.name, object: 'model', created, owned_by: 'doctor-agent', root: backend.name, max_model_len: backend.contextLength }],
    }),
    'GET /health': async () => ({ status: 'ok' }),
    // The folder's name only: the absolute path says more about the host than a client needs.
    'GET /get_model_info': async () => ({
      model_path: basename(backend.path), tokenizer_path: basename(backend.path), is_generation: true, context_length: backend.contextLength,
    }),
  };

  const server: Server = createServer({
    // Node's own limits back up the body timer below: headers must come within the body timeout too.
    headersTimeout: bodyTimeoutMs,
    requestTimeout: 2 * bodyTimeoutMs,
    connectionsCheckingInterval: Math.min(30_000, Math.max(100, Math.floor(bodyTimeoutMs / 4))),
  }, (req, res) => {
    void handle(req, res);
  });

  /** Whether the request carries the API key (constant time in the key). */
  const authorized = (req: IncomingMessage): boolean => {
    if (!keyDigest) return true;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return m !== null && timingSafeEqual(digest(m[1]), keyDigest);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes[`${req.method} ${path}`];
    const ac = new AbortController();
    inflight.add(ac);
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
      inflight.delete(ac);
    });
    try {
      if (!(req.method === 'GET' && path === '/health') && !authorized(req)) {
        throw new ApiError(401, 'missing or wrong API key: send the header "Authorization: Bearer KEY" with the key the server was started with', undefined, { 'www-authenticate': 'Bearer' });
      }
      if (!route) {
        const known = Object.keys(routes).filter((k) => k.endsWith(` ${path}`));
        if (known.length) throw new ApiError(405, `${req.method} ${path} is not allowed; use ${known.map((k) => k.split(' ')[0]).join(' or ')}`);
        throw new ApiError(404, `no route ${req.method} ${path}; the server offers ${Object.keys(routes).join(', ')}`);
      }
      let body: unknown;
      if (req.method === 'POST') {
        const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (type !== 'application/json') {
          throw new ApiError(415, `(body): send it as JSON with the header "Content-Type: application/json" (got ${type ? `"${type}"` : 'none'})`, '(body)');
        }
        body = await readJson(req, maxBody, bodyTimeoutMs);
      }
      const out = await route(body, ac.signal);
      send(res, 200, out);
    } catch (err) {
      if (err instanceof QueueFullError) err = queueFull(err);
      if (err instanceof ApiError) send(res, err.status, errorBody(err.status, err.message, err.param), err.headers);
      else if (ac.signal.aborted) res.destroy();
      else send(res, 500, errorBody(500, (err as Error).message));
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;

  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    scheduler,
    async close(graceMs = 30_000) {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const ac of inflight) ac.abort();
      }, graceMs);
      await scheduler.drain();
      clearTimeout(timer);
      server.closeAllConnections();
      await closed;
    },
  };
}

function errorBody(status: number, message: string, param?: string) {
  const type = status === 401 ? 'authentication_error'
    : status === 404 || status === 405 ? 'not_found_error'
      : status === 429 ? 'rate_limit_error'
        : status < 500 ? 'invalid_request_error' : 'server_error';
  return { object: 'error', error: { message, type, param: param ?? null, code: status } };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function queueFull(err: QueueFullError): ApiError {
  return new ApiError(503, err.message, undefined, { 'retry-after': String(err.retryAfterS) });
}

/**
 * When a prefix of `text` already has more than `limit` tokens (give or take `slack` for a word
 * cut at the end), a lower bound of its tokens past the limit; otherwise undefined (tokenize it
 * whole). Prefixes double from a few times the limit, so the work done on a text far too long
 * is bounded by the limit, not by the text.
 */
export function tokensPastContext(text: string, limit: number, slack: number, encode: (text: string) => number[]): number | undefined {
  for (let n = Math.max(4096, 4 * limit); n < text.length; n *= 2) {
    let cut = n;
    const c = text.charCodeAt(cut - 1);
    if (c >= 0xd800 && c <= 0xdbff) cut--; // not between the halves of a surrogate pair
    const count = encode(text.slice(0, cut)).length;
    if (count - slack >= limit) return count - slack;
  }
  return undefined;
}

/** Hands the event loop back every few milliseconds of work, and stops once the client has gone. */
class Slicer {
  private since = performance.now();
  constructor(private readonly signal: AbortSignal) {}
  async turn(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await new Promise((r) => setImmediate(r));
    this.signal.throwIfAborted();
    this.since = performance.now();
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  // A body refused half-read (too large, too slow) leaves the connection unusable: close it.
  const close = status === 408 || status === 413 ? { connection: 'close' } : {};
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...close, ...headers });
  res.end(text);
}

/** Reads a JSON body of at most `limit` bytes that must arrive within `timeoutMs`. */
async function readJson(req: IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw new ApiError(413, `request body over ${limit} bytes (Content-Length: ${declared}): send fewer or shorter prompts`);
  const buffer = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', done);
      req.off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) done(new ApiError(413, `request body over ${limit} bytes: send fewer or shorter prompts`));
      else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onClose = () => done(new Error('the client closed the connection before sending its whole body'));
    const timer = setTimeout(() => done(new ApiError(408, `request body not received within ${timeoutMs} ms`)), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', done);
    req.on('close', onClose);
  });
  const text = buffer.toString('utf8');
  if (!text.trim()) throw new ApiError(400, '(body): empty: send a JSON object', '(body)');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `(body): not valid JSON: ${(err as Error).message}`, '(body)');
  }
}
