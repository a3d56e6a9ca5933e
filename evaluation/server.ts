/**
 * An SGLang-compatible HTTP server over a Backend (node:http, no framework):
 *   POST /v1/chat/completions   OpenAI chat (messages → n assistant messages), streamed or not
 *   POST /v1/completions        OpenAI text completion (one or many prompts, text or token ids, × n), streamed or not
 *   POST /generate              SGLang's native API ({text | input_ids, sampling_params}, n outputs per prompt)
 *   GET  /v1/models, /health, /get_model_info
 * Every choice is one sequence of one continuous-batching Scheduler, fair across requests;
 * choice k of a request samples from the stream rowSeed(seed, k), as row k of engine/generate.
 * Streams are server-sent events; a request naming a model not served is a 404 model_not_found.
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
import { rowSeed } from '../engine/generate.ts';
import {
  QueueFullError, schedulerFor, type GenerationDelta, type Scheduling, type GenerationRequest, type GenerationResult, type TopLogprob,
} from './scheduler.ts';
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
  /** Steps that requests too few to fill a running batch wait for others to be prefilled with (Scheduler's `joinWaitSteps`). */
  joinWaitSteps?: number;
  /** Seeds requests that give none: request k gets seed + k. */
  seed?: number;
  /** Largest request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** A request body must arrive within this many ms of its headers (default 30 s); then 408 and the connection is closed. */
  bodyTimeoutMs?: number;
  /** Most sequences in one request (default 4096): prompts × n on /generate and /v1/completions, n on chat; past it, 400. */
  maxPromptsPerRequest?: number;
  /** Most sequences waiting for a place in the batch (default 16384); past it, 503 with Retry-After. */
  maxWaiting?: number;
  /** When set, every route but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /**
   * Names the model is served under, as vLLM's --served-model-name: /v1/models lists them, and a
   * request must name one of them or "default" (or none); default: the backend's name.
   */
  servedModelNames?: string[];
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
  scheduler: Scheduling;
  /** The names the model is served under (the first is the main one). */
  servedModelNames: string[];
  /** Stops accepting, lets requests in flight finish (up to graceMs), then closes. The backend stays open: its owner closes it. */
  close(graceMs?: number): Promise<void>;
}

/** What a handler returns when it has answered itself (an event stream). */
const STREAMED = Symbol('streamed');
type Handler = (body: unknown, signal: AbortSignal, res: ServerResponse) => Promise<unknown>;

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { backend } = opts;
  const maxPrompts = opts.maxPromptsPerRequest ?? DEFAULT_MAX_PROMPTS_PER_REQUEST;
  const maxWaiting = opts.maxWaiting ?? DEFAULT_MAX_WAITING;
  if (maxPrompts > maxWaiting) {
    throw new Error(`the waiting queue (${maxWaiting}) must hold at least one whole request (${maxPrompts} prompts): raise the queue or lower the prompts per request`);
  }
  const schedulerOptions = { maxBatch: opts.maxBatch, admitWaitMs: opts.admitWaitMs, joinWaitSteps: opts.joinWaitSteps, maxWaiting };
  const scheduler = schedulerFor(backend, schedulerOptions);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const bodyTimeoutMs = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const keyDigest = opts.apiKey ? digest(opts.apiKey) : undefined;
  let seedCounter = opts.seed ?? 0;
  const servedNames = opts.servedModelNames?.length ? [...opts.servedModelNames] : [backend.name];
  const created = Math.floor(Date.now() / 1000);
  const inflight = new Set<AbortController>();

  /** Sampling of a request; each choice k gets its own stream, `rowSeed(seed, k)` (as row k of engine/generate.ts). */
  const sampling = (b: { temperature?: number; top_p?: number; top_k?: number; min_p?: number; seed?: number | null }): SamplingParams => ({
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: b.top_k === undefined || b.top_k < 0 ? 0 : b.top_k,
    minP: b.min_p ?? 0,
    seed: b.seed ?? seedCounter++,
  });
  const forChoice = (base: SamplingParams, k: number): SamplingParams => ({ ...base, seed: rowSeed(base.seed, k) });

  /**
   * A request of `count` sequences (prompts × n): refused past the prompt cap (400) or when the
   * waiting queue has no room for it (503), before anything is validated or tokenized.
   */
  const checkCount = (count: number, field: string, what: string) => {
    if (count > maxPrompts) {
      throw new ApiError(400, `${field}: ${what} make ${count} sequences in one request; at most ${maxPrompts}: split it into several requests`, field);
    }
    checkRoom(count);
  };
  /** 503 with Retry-After when the waiting queue has no room for `count` more sequences. */
  const checkRoom = (count: number) => {
    if (count > scheduler.room) throw queueFull(new QueueFullError(`the waiting queue is full (${count} sequences asked, room for ${scheduler.room}): retry later`, 1));
  };
  /** `n` as sent, before validation (a bad value is refused by the schema afterwards). */
  const rawN = (raw: unknown): number => {
    const v = (raw as Record<string, unknown> | null)?.n;
    return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : 1;
  };

  /** A request naming another model than the one served: 404 model_not_found, as vLLM answers. */
  const modelOf = (asked: string | undefined): string => {
    if (asked === undefined || asked === 'default') return servedNames[0];
    if (servedNames.includes(asked)) return asked;
    throw new ApiError(404, `The model \`${asked}\` does not exist: this server serves ${servedNames.map((n) => `"${n}"`).join(', ')} (or "default")`,
      'model', {}, 'model_not_found');
  };

  /**
   * The number of new tokens to allow: what was asked, capped to what the context leaves after
   * the prompt (generation then stops with finish reason `length`). One long answer never turns
   * a request into an error; only a prompt that fills the context alone is refused.
   */
  const budget = (promptLen: number, asked: number | undefined, promptField: string): number => {
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

  /** A token as logprobs show it: its text, or "token_id:ID" when the request asked for ids (vLLM's return_tokens_as_token_ids). */
  const label = (id: number, asIds: boolean | undefined) => (asIds ? `token_id:${id}` : backend.decode([id]));
  const tokenEntry = (id: number, logprob: number, asIds: boolean | undefined) => {
    const token = label(id, asIds);
    return { token, logprob, bytes: [...Buffer.from(backend.decode([id]), 'utf8')] };
  };
  /** OpenAI chat logprobs: each token with, when asked, the most likely tokens at its step. */
  const chatLogprobs = (ids: number[], logprobs: number[], tops: TopLogprob[][] | undefined, asIds: boolean | undefined) => ({
    content: ids.map((id, i) => ({
      ...tokenEntry(id, logprobs[i], asIds),
      top_logprobs: (tops?.[i] ?? []).map((t) => tokenEntry(t.token, t.logprob, asIds)),
    })),
  });
  /**
   * Legacy completions logprobs: token labels, their log-probabilities (null for a first prompt
   * token), one {label: logprob} object of alternatives per token (null when none were asked),
   * and each token's character offset in the choice's text, counting from `offset`.
   */
  const completionLogprobs = (
    ids: number[], logprobs: (number | null)[], tops: (TopLogprob[] | null)[] | undefined, offset: number, asIds: boolean | undefined,
  ) => {
    const textOffset: number[] = [];
    for (const id of ids) {
      textOffset.push(offset);
      offset += backend.decode([id]).length;
    }
    return {
      tokens: ids.map((id) => label(id, asIds)),
      token_logprobs: logprobs,
      top_logprobs: tops ? tops.map((top) => (top ? Object.fromEntries(top.map((t) => [label(t.token, asIds), t.logprob])) : null)) : null,
      text_offset: textOffset,
    };
  };
  const usageOf = (promptTokens: number, results: GenerationResult[]) => {
    const completion = results.reduce((n, r) => n + r.tokenIds.length, 0);
    return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
  };
  const id = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

  /**
   * Runs a request's sequences, streamed or not. Streamed: the event stream opens once the
   * request is accepted (every check done, room in the queue); `first` sends the opening chunks,
   * then each delta goes out as it comes; a failure after the stream opened is sent as an error
   * event; a client that hangs up cancels the whole request (its sequences leave the batch).
   */
  const run = async (
    reqs: GenerationRequest[], signal: AbortSignal, res: ServerResponse,
    stream: { first(sse: Sse): void; delta(sse: Sse, k: number, d: GenerationDelta): void; last(sse: Sse, results: GenerationResult[]): void } | undefined,
  ): Promise<GenerationResult[] | typeof STREAMED> => {
    if (!stream) return scheduler.submitAll(reqs, { signal });
    checkRoom(reqs.length);
    const sse = new Sse(res);
    stream.first(sse);
    reqs.forEach((r, k) => {
      r.onDelta = (d) => stream.delta(sse, k, d);
    });
    try {
      const results = await scheduler.submitAll(reqs, { signal });
      stream.last(sse, results);
      sse.end();
    } catch (err) {
      if (signal.aborted) res.destroy();
      else {
        const status = err instanceof QueueFullError ? 503 : err instanceof ApiError ? err.status : 500;
        sse.send(errorBody(status, (err as Error).message));
        sse.end();
      }
    }
    return STREAMED;
  };

  const chat: Handler = async (raw, signal, res) => {
    checkCount(rawN(raw), 'n', 'n choices');
    const body = parseBody(ChatRequest, raw);
    const model = modelOf(body.model);
    const n = body.n ?? 1;
    const turns = body.messages.map((m) => ({ role: m.role, content: messageText(m.content) }));
    // The contents alone already past the context: refused before the template and the whole text are tokenized.
    const slack = PREFIX_SLACK + 2 * turns.length;
    const over = tokensPastContext(turns.map((t) => t.content).join('\n'), backend.contextLength, slack, (t) => backend.encode(t));
    if (over !== undefined) throw tooLong('messages', over);
    const promptIds = backend.encodeChat(turns);
    const maxNewTokens = budget(promptIds.length, body.max_completion_tokens ?? body.max_tokens, 'messages');
    const base = sampling(body);
    const stop = stopList(body.stop);
    const topLogprobs = body.logprobs ? body.top_logprobs ?? undefined : undefined;
    const reqs: GenerationRequest[] = Array.from({ length: n }, (_, k) => ({
      promptIds, maxNewTokens, sampling: forChoice(base, k), stop, topLogprobs,
    }));
    const asIds = body.return_tokens_as_token_ids;
    const cid = id('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    const withUsage = body.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      ({ id: cid, object: 'chat.completion.chunk', created, model, choices, ...(withUsage ? { usage: null } : {}), ...extra });
    const out = await run(reqs, signal, res, body.stream ? {
      first(sse) {
        for (let k = 0; k < n; k++) sse.send(chunk([{ index: k, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
      },
      delta(sse, k, d) {
        const done = d.finishReason !== undefined;
        if (!done && !d.text && d.tokenIds.length === 0) return;
        sse.send(chunk([{
          index: k,
          delta: d.text || !done ? { content: d.text } : {},
          logprobs: body.logprobs ? chatLogprobs(d.tokenIds, d.logprobs, d.topLogprobs, asIds) : null,
          finish_reason: d.finishReason ?? null,
          ...(done ? { matched_stop: d.matchedStop ?? null } : {}),
        }]));
      },
      last(sse, results) {
        if (withUsage) sse.send(chunk([], { usage: usageOf(promptIds.length, results) }));
      },
    } : undefined);
    if (out === STREAMED) return STREAMED;
    return {
      id: cid,
      object: 'chat.completion',
      created,
      model,
      choices: out.map((r, k) => ({
        index: k,
        message: { role: 'assistant', content: r.text },
        logprobs: body.logprobs ? chatLogprobs(r.tokenIds, r.logprobs, r.topLogprobs, asIds) : null,
        finish_reason: r.finishReason,
        matched_stop: r.matchedStop ?? null,
      })),
      usage: usageOf(promptIds.length, out),
    };
  };

  const completion: Handler = async (raw, signal, res) => {
    // The prompt count times n is checked before the body is validated or tokenized.
    const list = (raw as Record<string, unknown> | null)?.prompt;
    const listed = Array.isArray(list) && list.length > 0 && (typeof list[0] === 'string' || Array.isArray(list[0]));
    checkCount((listed ? (list as unknown[]).length : 1) * rawN(raw), 'prompt', 'the prompts times n');
    const body = parseBody(CompletionRequest, raw);
    const model = modelOf(body.model);
    const n = body.n ?? 1;
    const multi = Array.isArray(body.prompt) && (typeof body.prompt[0] === 'string' || Array.isArray(body.prompt[0]));
    const given = (multi ? body.prompt : [body.prompt]) as (string | number[])[];
    const field = (i: number) => (multi ? `prompt[${i}]` : 'prompt');
    const prompts: number[][] = [];
    const slice = new Slicer(signal);
    for (let i = 0; i < given.length; i++) {
      await slice.turn();
      const p = given[i];
      prompts.push(typeof p === 'string' ? encodeBounded(p, field(i)) : checkIds(p, field(i)));
    }
    const lp = body.logprobs;
    const wantLogprobs = lp !== undefined && lp !== null && lp !== false;
    const topK = typeof lp === 'number' && lp > 0 ? lp : undefined;
    const asIds = body.return_tokens_as_token_ids;
    const echo = body.echo === true;
    // Echo: the prompt's text leads each choice's text; with logprobs, the prompt's tokens lead the logprobs.
    const echoText = echo ? given.map((p, i) => (typeof p === 'string' ? p : backend.decode(prompts[i]))) : [];
    let echoLogprobs: { logprobs: (number | null)[]; tops: (TopLogprob[] | null)[] }[] = [];
    if (echo && wantLogprobs) {
      if (!backend.promptLogprobs) throw new ApiError(400, 'echo: this model cannot score its prompt: leave "echo" out or "logprobs" out', 'echo');
      for (const ids of prompts) {
        const scored = await backend.promptLogprobs(ids, topK ?? 0);
        signal.throwIfAborted();
        echoLogprobs.push({ logprobs: [null, ...scored.map((s) => s.logprob)], tops: [null, ...scored.map((s) => s.top)] });
      }
    }
    const base = sampling(body);
    const stop = stopList(body.stop);
    const stopTokenIds = body.stop_token_ids ?? undefined;
    const reqs: GenerationRequest[] = [];
    for (let i = 0; i < prompts.length; i++) {
      if (i % 1024 === 0) await slice.turn();
      const ids = prompts[i];
      const maxNewTokens = budget(ids.length, body.max_tokens ?? Math.min(16, backend.contextLength - ids.length), field(i));
      for (let j = 0; j < n; j++) {
        reqs.push({ promptIds: ids, maxNewTokens, sampling: forChoice(base, i * n + j), stop, stopTokenIds, topLogprobs: topK });
      }
    }
    const promptTokens = prompts.reduce((s, p) => s + p.length, 0);
    const cid = id('cmpl');
    const created = Math.floor(Date.now() / 1000);
    const withUsage = body.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      ({ id: cid, object: 'text_completion', created, model, choices, ...(withUsage ? { usage: null } : {}), ...extra });
    /** The echoed prompt's logprobs, then the generated tokens' (offsets continue after the prompt's text). */
    const logprobsOf = (ids: number[], logprobs: number[], tops: TopLogprob[][] | undefined, offset: number) => {
      if (!wantLogprobs) return null;
      return completionLogprobs(ids, logprobs, topK ? (tops ?? ids.map(() => [])) : undefined, offset, asIds);
    };
    const echoLogprobsOf = (i: number) => {
      const e = echoLogprobs[i];
      return completionLogprobs(prompts[i], e.logprobs, topK ? e.tops : undefined, 0, asIds);
    };
    const joinLogprobs = (a: ReturnType<typeof completionLogprobs>, b: ReturnType<typeof completionLogprobs>) => ({
      tokens: [...a.tokens, ...b.tokens],
      token_logprobs: [...a.token_logprobs, ...b.token_logprobs],
      top_logprobs: a.top_logprobs && b.top_logprobs ? [...a.top_logprobs, ...b.top_logprobs] : null,
      text_offset: [...a.text_offset, ...b.text_offset],
    });
    // Streaming: each choice's character offset so far, for text_offset.
    const offsets = reqs.map((_, k) => (echo ? echoText[Math.floor(k / n)].length : 0));
    const out = await run(reqs, signal, res, body.stream ? {
      first(sse) {
        if (!echo) return;
        for (let k = 0; k < reqs.length; k++) {
          const i = Math.floor(k / n);
          sse.send(chunk([{ index: k, text: echoText[i], logprobs: wantLogprobs ? echoLogprobsOf(i) : null, finish_reason: null }]));
        }
      },
      delta(sse, k, d) {
        const done = d.finishReason !== undefined;
        if (!done && !d.text && d.tokenIds.length === 0) return;
        const logprobs = logprobsOf(d.tokenIds, d.logprobs, d.topLogprobs, offsets[k]);
        offsets[k] += d.text.length;
        sse.send(chunk([{
          index: k, text: d.text, logprobs, finish_reason: d.finishReason ?? null, ...(done ? { matched_stop: d.matchedStop ?? null } : {}),
        }]));
      },
      last(sse, results) {
        if (withUsage) sse.send(chunk([], { usage: usageOf(promptTokens, results) }));
      },
    } : undefined);
    if (out === STREAMED) return STREAMED;
    return {
      id: cid,
      object: 'text_completion',
      created,
      model,
      choices: out.map((r, k) => {
        const i = Math.floor(k / n);
        const lead = echo ? echoText[i] : '';
        let logprobs = logprobsOf(r.tokenIds, r.logprobs, r.topLogprobs, lead.length);
        if (logprobs && echo) logprobs = joinLogprobs(echoLogprobsOf(i), logprobs);
        return { index: k, text: lead + r.text, logprobs, finish_reason: r.finishReason, matched_stop: r.matchedStop ?? null };
      }),
      usage: usageOf(promptTokens, out),
    };
  };
  const generate: Handler = async (raw, signal) => {
    modelOf((raw as Record<string, unknown> | null)?.model as string | undefined ?? undefined);
    // The prompt count and the queue's room are checked before the body is validated or tokenized.
    const field = raw && typeof raw === 'object' && 'text' in raw ? 'text' : 'input_ids';
    const list = (raw as Record<string, unknown> | null)?.[field];
    const given = Array.isArray(list) && (field === 'text' || Array.isArray(list[0])) ? list.length : 1;
    const askedN = rawN((raw as Record<string, unknown>)?.sampling_params);
    if (askedN === 1 && given > maxPrompts) {
      throw new ApiError(400, `${field}: ${given} prompts in one request; at most ${maxPrompts}: split the batch into several requests`, field);
    }
    checkCount(given * askedN, field, `${given} prompt${given === 1 ? '' : 's'} × n = ${askedN}`);
    const body = parseBody(GenerateRequest, raw);
    const sp = body.sampling_params ?? {};
    const n = sp.n ?? 1;
    // As SGLang: a batch, or one prompt with n > 1, is answered with a list (prompt i, output j at i × n + j).
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
      const maxNewTokens = budget(ids.length, sp.max_new_tokens ?? Math.min(128, backend.contextLength - ids.length), field);
      for (let j = 0; j < n; j++) {
        reqs.push({ promptIds: ids, maxNewTokens, sampling: forChoice(base, i * n + j), stop, stopTokenIds: sp.stop_token_ids });
      }
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
    return batched || n > 1 ? out : out[0];
  };

  const routes: Record<string, Handler> = {
    'POST /v1/chat/completions': chat,
    'POST /v1/completions': completion,
    'POST /generate': generate,
    'GET /v1/models': async () => ({
      object: 'list',
      data: servedNames.map((name) => ({
        id: name, object: 'model', created, owned_by: 'doctor-agent', root: basename(backend.path), max_model_len: backend.contextLength,
      })),
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
      const out = await route(body, ac.signal, res);
      if (out !== STREAMED) send(res, 200, out);
    } catch (err) {
      if (err instanceof QueueFullError) err = queueFull(err);
      if (err instanceof ApiError) send(res, err.status, errorBody(err.status, err.message, err.param, err.code), err.headers);
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
    servedModelNames: [...servedNames],
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

function errorBody(status: number, message: string, param?: string, code?: string) {
  const type = status === 401 ? 'authentication_error'
    : status === 404 || status === 405 ? 'not_found_error'
      : status === 429 ? 'rate_limit_error'
        : status < 500 ? 'invalid_request_error' : 'server_error';
  return { object: 'error', error: { message, type, param: param ?? null, code: code ?? status } };
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

/** A server-sent event stream (text/event-stream): `data: JSON` events, ended by `data: [DONE]`. */
class Sse {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
  }
  send(event: unknown): void {
    if (!this.res.destroyed) this.res.write(`data: ${JSON.stringify(event)}\n\n`);
  }
  end(): void {
    if (!this.res.destroyed) this.res.end('data: [DONE]\n\n');
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
