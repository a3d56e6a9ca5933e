/**
 * Token completions (evaluation/backend.ts `TokenCompletions`) from two places: the engine
 * in-process (`generate()`, one batch of prompts × n rows), or an OpenAI/SGLang-compatible
 * server's `POST /v1/completions` with token-id prompts, `n`, the seed, and the tokens returned
 * as ids (`logprobs` with vLLM's `return_tokens_as_token_ids`, which the built-in server
 * supports). Both report a choice as the server does: the stop token that ended it is not among
 * its tokens but in `matchedStop`.
 */
import { ChatClient } from '../data/chat-client.ts';
import { generate } from '../engine/generate.ts';
import type { CausalLM } from '../engine/model.ts';
import type { TokenCompletion, TokenCompletionRequest, TokenCompletions } from './backend.ts';

/** The rows of a request: each prompt n times, prompt-major, so row k is choice k. */
export function choiceRows(req: TokenCompletionRequest): number[][] {
  return req.prompts.flatMap((p) => new Array<number[]>(req.n).fill(p));
}

/**
 * Completions on the engine: row k of one generate() call is choice k (prompt-major), from the
 * stream rowSeed(seed, firstRow + k): `firstRow` when the request is rows firstRow.. of a larger
 * one (a rollout in slices, rl/rollout-thread.ts), default 0.
 */
export function completeOnEngine(model: CausalLM, req: TokenCompletionRequest, padTokenId?: number, firstRow = 0): TokenCompletion[] {
  const r = generate(model, choiceRows(req), {
    maxNewTokens: req.maxTokens,
    temperature: req.temperature,
    topP: req.topP,
    seed: req.seed,
    firstRow,
    stopTokenIds: req.stopTokenIds,
    padTokenId,
  });
  return r.tokens.map((tokens, k) => r.finishReasons[k] === 'stop_token'
    ? { tokens: tokens.slice(0, -1), logprobs: r.logprobs[k].slice(0, -1), finishReason: 'stop', matchedStop: tokens.at(-1)! }
    : { tokens, logprobs: r.logprobs[k], finishReason: 'length' });
}

export function engineCompletions(model: CausalLM, opts: { padTokenId?: number } = {}): TokenCompletions {
  return { where: 'the in-process engine', complete: async (req) => completeOnEngine(model, req, opts.padTokenId) };
}

export interface ServerCompletionsConfig {
  /** e.g. http://127.0.0.1:30000/v1 */
  baseUrl: string;
  /** The model name the server serves. */
  model: string;
  /** Environment variable holding the API key (a local server may need none). */
  apiKeyEnv?: string;
  timeoutMs?: number;
  maxRetries?: number;
}

/** Completions from a server's /v1/completions; see the file comment. */
export function serverCompletions(cfg: ServerCompletionsConfig): TokenCompletions {
  const client = new ChatClient({
    baseUrl: cfg.baseUrl, model: cfg.model, apiKeyEnv: cfg.apiKeyEnv, timeoutMs: cfg.timeoutMs, maxRetries: cfg.maxRetries, concurrency: 1,
  });
  const where = `model "${cfg.model}" at ${client.config.baseUrl}`;
  return {
    where,
    async complete(req) {
      const reply = await client.postJson('completions', {
        prompt: req.prompts, n: req.n, max_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, seed: req.seed,
        // Stop tokens as vLLM and SGLang take them (the built-in server stops on the model's own end tokens).
        stop_token_ids: req.stopTokenIds,
        logprobs: 0, return_tokens_as_token_ids: true, echo: false, stream: false,
      });
      return parseCompletionChoices(reply, req.prompts.length * req.n, where);
    },
  };
}

interface WireChoice {
  index?: unknown;
  finish_reason?: unknown;
  matched_stop?: unknown;
  stop_reason?: unknown;
  logprobs?: { tokens?: unknown; token_logprobs?: unknown } | null;
}

/** The choices of a /v1/completions reply in index order, as token ids; a reply that is not one fails naming what is missing. */
export function parseCompletionChoices(reply: unknown, expected: number, where: string): TokenCompletion[] {
  const choices = (reply as { choices?: unknown })?.choices;
  if (!Array.isArray(choices)) throw new Error(`${where}: the reply has no choices: ${JSON.stringify(reply).slice(0, 200)}`);
  if (choices.length !== expected) throw new Error(`${where}: expected ${expected} choices (prompts × n), got ${choices.length}`);
  const out: TokenCompletion[] = new Array(expected);
  for (const c of choices as WireChoice[]) {
    const k = c.index;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= expected || out[k]) {
      throw new Error(`${where}: a choice has index ${JSON.stringify(k)}, expected each of 0..${expected - 1} once`);
    }
    const tokens = c.logprobs?.tokens;
    if (!Array.isArray(tokens)) {
      throw new Error(`${where}: choice ${k} has no logprobs.tokens: the server must answer logprobs with token ids (return_tokens_as_token_ids, as vLLM and the built-in server do)`);
    }
    const ids = tokens.map((t, i) => {
      const m = typeof t === 'string' ? /^token_id:(\d+)$/.exec(t) : null;
      if (!m) throw new Error(`${where}: choice ${k} token ${i} is ${JSON.stringify(t)}, not "token_id:ID": the server must support return_tokens_as_token_ids (vLLM's option; the built-in server has it)`);
      return Number(m[1]);
    });
    const lps = Array.isArray(c.logprobs?.token_logprobs) ? (c.logprobs!.token_logprobs as unknown[]).map((x) => (typeof x === 'number' ? x : NaN)) : ids.map(() => NaN);
    if (c.finish_reason !== 'stop' && c.finish_reason !== 'length') {
      throw new Error(`${where}: choice ${k} ended with finish_reason ${JSON.stringify(c.finish_reason)}, expected "stop" or "length"`);
    }
    const named = typeof c.matched_stop === 'number' ? c.matched_stop : typeof c.stop_reason === 'number' ? c.stop_reason : undefined;
    out[k] = { tokens: ids, logprobs: lps, finishReason: c.finish_reason, ...(c.finish_reason === 'stop' && named !== undefined ? { matchedStop: named } : {}) };
  }
  return out;
}
