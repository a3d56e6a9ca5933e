/**
 * A client for any OpenAI-compatible chat completions server (OpenAI, SGLang, vLLM...), and
 * its text completions (`complete`):
 * bounded concurrency, retries with exponential backoff and jitter on 429, 5xx, timeouts
 * and network errors (a Retry-After header wins over the backoff), a per-request timeout,
 * and token-usage accounting.
 */
import { Rng } from '../common/rng.ts';
import { extractJson } from './json-extract.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatClientConfig {
  /** e.g. "https://api.openai.com/v1" or "http://127.0.0.1:30000/v1". */
  baseUrl: string;
  model: string;
  /** The key itself; takes precedence over apiKeyEnv. */
  apiKey?: string;
  /** Name of the environment variable holding the key (e.g. "OPENAI_API_KEY"). */
  apiKeyEnv?: string;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Retries after the first try. */
  maxRetries?: number;
  timeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  temperature?: number;
  maxTokens?: number;
  /** Seed of the jitter stream. */
  seed?: number;
}

export interface ChatOptions {
  temperature?: number;
  maxTokens?: number;
  /** Ask for the top-k log-probabilities of each generated token. */
  topLogprobs?: number;
  /** Nucleus sampling mass (top_p), sent only when given. */
  topP?: number;
  /** Per-request sampling seed, sent only when given. */
  seed?: number;
  signal?: AbortSignal;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  top_logprobs?: { token: string; logprob: number }[];
}

export interface ChatReply {
  text: string;
  finishReason?: string;
  logprobs?: TokenLogprob[];
  usage: { promptTokens: number; completionTokens: number };
}

export interface ChatUsage {
  requests: number;
  retries: number;
  failures: number;
  promptTokens: number;
  completionTokens: number;
}

/** The server answered, but never with the JSON asked for. */
export class MalformedReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedReplyError';
  }
}

/** Adds one reply's tokens to a per-item usage tally. */
export function addUsage(usage: ChatUsage, reply: ChatReply): void {
  usage.requests++;
  usage.promptTokens += reply.usage.promptTokens;
  usage.completionTokens += reply.usage.completionTokens;
}

export function emptyUsage(): ChatUsage {
  return { requests: 0, retries: 0, failures: 0, promptTokens: 0, completionTokens: 0 };
}

/** The pipeline's teacher block (dsl/kinds/common.ts Teacher), as client config. */
export function teacherConfig(t: { base_url: string; model: string; api_key_env?: string; concurrency?: number; max_retries?: number; timeout?: number; temperature?: number }, seed = 0): ChatClientConfig {
  return {
    baseUrl: t.base_url,
    model: t.model,
    apiKeyEnv: t.api_key_env,
    concurrency: t.concurrency,
    maxRetries: t.max_retries,
    timeoutMs: t.timeout !== undefined ? t.timeout * 1000 : undefined,
    temperature: t.temperature,
    seed,
  };
}

/** A request that failed for good (after retries, or at once for a non-retryable status). */
export class ChatError extends Error {
  /** The server's Retry-After, in milliseconds, when it sent one. */
  retryAfterMs?: number;
  /** The body of an HTTP error response, as the server sent it. */
  body?: string;
  constructor(message: string, readonly status?: number, readonly retryable = false) {
    super(message);
    this.name = 'ChatError';
  }
}

export class ChatClient {
  readonly config: Required<Omit<ChatClientConfig, 'apiKey' | 'apiKeyEnv' | 'temperature'>> & { apiKey?: string; temperature?: number };
  /** The environment variable named for the key when it was not set (requests go without a key). */
  readonly missingKeyEnv?: string;
  readonly usage: ChatUsage = emptyUsage();
  private active = 0;
  private waiting: (() => void)[] = [];
  private rng: Rng;

  constructor(config: ChatClientConfig) {
    const apiKey = config.apiKey ?? (config.apiKeyEnv ? process.env[config.apiKeyEnv] || undefined : undefined);
    // A local server (SGLang, vLLM) needs no key: a missing one is only noted, and named if the server refuses.
    if (config.apiKeyEnv && !apiKey) this.missingKeyEnv = config.apiKeyEnv;
    this.config = {
      baseUrl: config.baseUrl.replace(/\/+$/, ''),
      model: config.model,
      apiKey,
      concurrency: config.concurrency ?? 8,
      maxRetries: config.maxRetries ?? 6,
      timeoutMs: config.timeoutMs ?? 120_000,
      initialBackoffMs: config.initialBackoffMs ?? 1000,
      maxBackoffMs: config.maxBackoffMs ?? 60_000,
      temperature: config.temperature,
      maxTokens: config.maxTokens ?? 4096,
      seed: config.seed ?? 0,
    };
    this.rng = new Rng(`chat-jitter:${this.config.seed}`);
  }

  /** One chat completion, retried as configured. */
  async chat(messages: ChatMessage[], opts: ChatOptions = {}): Promise<ChatReply> {
    return this.retried(() => this.once({ messages }, opts), opts);
  }

  /**
   * One text completion (`/completions`: the prompt as given, e.g. already rendered through
   * the model's chat template), retried as configured.
   */
  async complete(prompt: string, opts: ChatOptions = {}): Promise<ChatReply> {
    return this.retried(() => this.once({ prompt }, opts), opts);
  }

  /**
   * POSTs a JSON body to `path` under the base URL (e.g. `completions` with token-id prompts and
   * `n`) and returns the parsed reply as it came, retried as configured.
   */
  async postJson(path: string, body: Record<string, unknown>, opts: { signal?: AbortSignal } = {}): Promise<unknown> {
    return this.retried(async () => {
      const res = await this.send(path, { model: this.config.model, ...body }, opts.signal);
      try {
        return JSON.parse(res.raw) as unknown;
      } catch {
        throw new ChatError(`${this.config.baseUrl}: the server answered with invalid JSON: ${res.raw.slice(0, 200)}`, res.status, true);
      }
    }, opts);
  }

  private async retried<T>(ask: () => Promise<T>, opts: { signal?: AbortSignal }): Promise<T> {
    await this.acquire();
    try {
      for (let attempt = 0; ; attempt++) {
        opts.signal?.throwIfAborted();
        try {
          return await ask();
        } catch (err) {
          const e = toChatError(err, this.config.timeoutMs);
          if (opts.signal?.aborted) throw opts.signal.reason ?? e;
          if (!e.retryable || attempt >= this.config.maxRetries) {
            this.usage.failures++;
            throw e;
          }
          this.usage.retries++;
          await sleep(this.backoffMs(attempt, e.retryAfterMs), opts.signal);
        }
      }
    } finally {
      this.release();
    }
  }

  /**
   * Asks for a JSON reply: extracts it tolerantly and checks its shape with `check`
   * (which throws saying what is wrong). A malformed reply is asked again, up to
   * `parseRetries` times; then MalformedReplyError lists what each reply lacked.
   */
  async chatJson<T>(prompt: string, check: (value: unknown) => T, opts: ChatOptions & { parseRetries?: number; usage?: ChatUsage } = {}): Promise<T> {
    const reasons: string[] = [];
    for (let i = 0; i <= (opts.parseRetries ?? 2); i++) {
      const reply = await this.chat([{ role: 'user', content: prompt }], opts);
      if (opts.usage) addUsage(opts.usage, reply);
      try {
        return check(extractJson(reply.text));
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    throw new MalformedReplyError(`${this.config.model} gave no usable JSON in ${reasons.length} replies: ${reasons.map((r, i) => `[${i + 1}] ${r}`).join(' ')}`);
  }

  /** Exponential backoff with full jitter, or the server's Retry-After when it gave one. */
  backoffMs(attempt: number, retryAfterMs?: number): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.config.maxBackoffMs);
    const cap = Math.min(this.config.maxBackoffMs, this.config.initialBackoffMs * 2 ** attempt);
    return cap / 2 + this.rng.next() * (cap / 2);
  }

  private async once(input: { messages: ChatMessage[] } | { prompt: string }, opts: ChatOptions): Promise<ChatReply> {
    const chat = 'messages' in input;
    const body: Record<string, unknown> = {
      model: this.config.model,
      ...input,
      max_tokens: opts.maxTokens ?? this.config.maxTokens,
    };
    const temperature = opts.temperature ?? this.config.temperature;
    if (temperature !== undefined) body.temperature = temperature;
    if (opts.topP !== undefined) body.top_p = opts.topP;
    if (opts.seed !== undefined) body.seed = opts.seed;
    if (opts.topLogprobs !== undefined) {
      if (chat) {
        body.logprobs = true;
        body.top_logprobs = opts.topLogprobs;
      } else body.logprobs = opts.topLogprobs;
    }
    const res = await this.send(chat ? 'chat/completions' : 'completions', body, opts.signal);
    const raw = res.raw;
    let json: OpenAiResponse;
    try {
      json = JSON.parse(raw) as OpenAiResponse;
    } catch {
      throw new ChatError(`${this.config.baseUrl}: the server answered with invalid JSON: ${raw.slice(0, 200)}`, res.status, true);
    }
    const choice = json.choices?.[0];
    const text = chat ? choice?.message?.content : choice?.text;
    if (!choice || typeof text !== 'string') {
      throw new ChatError(`${this.config.baseUrl}: the reply has no choices[0].${chat ? 'message.content' : 'text'}: ${raw.slice(0, 200)}`, res.status, true);
    }
    const usage = { promptTokens: json.usage?.prompt_tokens ?? 0, completionTokens: json.usage?.completion_tokens ?? 0 };
    this.usage.promptTokens += usage.promptTokens;
    this.usage.completionTokens += usage.completionTokens;
    return { text, finishReason: choice.finish_reason, logprobs: (chat ? choice.logprobs?.content : undefined) ?? undefined, usage };
  }

  /** One POST of a JSON body; an HTTP error status is thrown as a ChatError (retryable on 408, 429 and 5xx). */
  private async send(path: string, body: Record<string, unknown>, outer?: AbortSignal): Promise<{ raw: string; status: number }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.config.apiKey) headers.authorization = `Bearer ${this.config.apiKey}`;
    const timeout = AbortSignal.timeout(this.config.timeoutMs);
    const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
    this.usage.requests++;
    const res = await fetch(`${this.config.baseUrl}/${path}`, { method: 'POST', headers, body: JSON.stringify(body), signal });
    const raw = await res.text();
    if (!res.ok) {
      const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
      const err = new ChatError(`${this.config.baseUrl}: HTTP ${res.status}: ${raw.slice(0, 300)}${hintFor(res.status, this.missingKeyEnv)}`, res.status, retryable);
      err.retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      err.body = raw;
      throw err;
    }
    return { raw, status: res.status };
  }

  private async acquire(): Promise<void> {
    if (this.active < this.config.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

interface OpenAiResponse {
  choices?: { message?: { content?: string }; text?: string; finish_reason?: string; logprobs?: { content?: TokenLogprob[] | null } | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

function toChatError(err: unknown, timeoutMs: number): ChatError {
  if (err instanceof ChatError) return err;
  const e = err as Error;
  if (e?.name === 'TimeoutError') return new ChatError(`request timed out after ${timeoutMs} ms`, undefined, true);
  if (e?.name === 'AbortError') return new ChatError('request aborted', undefined, false);
  // fetch() throws TypeError("fetch failed") on refused connections, resets, DNS failures.
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  return new ChatError(`network error: ${e?.message ?? String(err)}${cause ? ` (${cause.code ?? cause.message})` : ''}`, undefined, true);
}

function hintFor(status: number, missingKeyEnv?: string): string {
  if (status === 401 || status === 403) {
    return missingKeyEnv ? ` (no API key was sent: environment variable ${missingKeyEnv} is not set)` : ' (check the API key: api_key_env in the pipeline names the variable holding it)';
  }
  if (status === 404) return ' (check base_url: it should end before /chat/completions, e.g. .../v1, and the model name)';
  return '';
}

/** Retry-After is either seconds or an HTTP date. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(value);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
