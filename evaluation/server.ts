/**
 * An SGLang-compatible HTTP server over a Backend (node:http, no framework):
 *   POST /v1/chat/completions   OpenAI chat (messages → assistant message)
 *   POST /v1/completions        OpenAI text completion
 *   POST /generate              SGLang's native API ({text | input_ids, sampling_params})
 *   GET  /v1/models, /health, /get_model_info
 * Every generation goes through one continuous-batching Scheduler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Backend, SamplingParams } from './backend.ts';
import { Scheduler, type GenerationResult } from './scheduler.ts';
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
  /** Largest request body in bytes. */
  maxBodyBytes?: number;
}

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
  const scheduler = new Scheduler(backend, { maxBatch: opts.maxBatch, admitWaitMs: opts.admitWaitMs });
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  let seedCounter = opts.seed ?? 0;
  const created = Math.floor(Date.now() / 1000);
  const inflight = new Set<AbortController>();

  const sampling = (b: { temperature?: number; top_p?: number; top_k?: number; seed?: number }): SamplingParams => ({
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: b.top_k === undefined || b.top_k < 0 ? 0 : b.top_k,
    seed: b.seed ?? seedCounter++,
  });

  /** The number of new tokens to allow, checked against the context length. */
  const budget = (promptLen: number, asked: number | undefined, field: string, promptField: string): number => {
    const room = backend.contextLength - promptLen;
    if (room <= 0) {
      throw new ApiError(400, `${promptField}: the prompt has ${promptLen} tokens but the model's context is ${backend.contextLength}: shorten it`, promptField);
    }
    if (asked === undefined) return room;
    if (asked > room) {
      throw new ApiError(400, `${field}: ${asked} new tokens do not fit: the prompt has ${promptLen} tokens and the context is ${backend.contextLength}, so at most ${room}`, field);
    }
    return asked;
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
    const promptIds = backend.encodeChat(body.messages.map((m) => ({ role: m.role, content: messageText(m.content) })));
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
    const promptIds = typeof body.prompt === 'string' ? backend.encode(body.prompt) : checkIds(body.prompt, 'prompt');
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
    const body = parseBody(GenerateRequest, raw);
    const sp = body.sampling_params ?? {};
    const prompts: number[][] = body.text !== undefined
      ? (Array.isArray(body.text) ? body.text : [body.text]).map((t) => backend.encode(t))
      : Array.isArray(body.input_ids![0])
        ? (body.input_ids as number[][]).map((ids, i) => checkIds(ids, `input_ids[${i}]`))
        : [checkIds(body.input_ids as number[], 'input_ids')];
    const batched = Array.isArray(body.text) || Array.isArray(body.input_ids?.[0]);
    const base = sampling(sp);
    // Every prompt is checked before any is started.
    const budgets = prompts.map((ids) =>
      budget(ids.length, sp.max_new_tokens ?? Math.min(128, backend.contextLength - ids.length), 'sampling_params.max_new_tokens', body.text !== undefined ? 'text' : 'input_ids'));
    const results = await Promise.all(prompts.map((promptIds, i) =>
      scheduler.submit({
        promptIds,
        maxNewTokens: budgets[i],
        sampling: { ...base, seed: base.seed + i },
        stop: stopList(sp.stop),
        stopTokenIds: sp.stop_token_ids,
        signal,
      }).then((r) => ({
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
      }))));
    return batched ? results : results[0];
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
    'GET /get_model_info': async () => ({
      model_path: backend.path, tokenizer_path: backend.path, is_generation: true, context_length: backend.contextLength,
    }),
  };

  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });

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
      if (!route) {
        const known = Object.keys(routes).filter((k) => k.endsWith(` ${path}`));
        if (known.length) throw new ApiError(405, `${req.method} ${path} is not allowed; use ${known.map((k) => k.split(' ')[0]).join(' or ')}`);
        throw new ApiError(404, `no route ${req.method} ${path}; the server offers ${Object.keys(routes).join(', ')}`);
      }
      const body = req.method === 'POST' ? await readJson(req, maxBody) : undefined;
      const out = await route(body, ac.signal);
      send(res, 200, out);
    } catch (err) {
      if (err instanceof ApiError) send(res, err.status, errorBody(err.status, err.message, err.param));
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
  const type = status === 400 ? 'invalid_request_error' : status === 404 || status === 405 ? 'not_found_error' : 'server_error';
  return { object: 'error', error: { message, type, param: param ?? null, code: status } };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new ApiError(413, `request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new ApiError(400, '(body): empty: send a JSON object', '(body)');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, `(body): not valid JSON: ${(err as Error).message}`, '(body)');
  }
}
