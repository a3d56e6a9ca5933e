/**
 * Request bodies of the served API (OpenAI chat/completions and SGLang's /generate),
 * as zod schemas. Unknown fields are accepted and ignored, as OpenAI clients send many;
 * what we cannot honour (e.g. a JSON response format) is refused with a clear error.
 */
import { z } from 'zod';

/** The sampling bounds of every request, and of the steps that send them: eval.sglang (dsl/kinds/eval-sglang.ts), rl.grpo and rl.ppo (dsl/kinds/rl.ts, through rollout:). */
export const MAX_TEMPERATURE = 2;
export const Temperature = z.number().min(0).max(MAX_TEMPERATURE);
export const TopP = z.number().gt(0).max(1);
const temperature = Temperature;
const topP = TopP;
/** -1 or 0: no top-k cut (vLLM and SGLang take -1). */
const topK = z.number().int().min(-1);
const minP = z.number().min(0).max(1);
const maxTokens = z.number().int().min(1);
const stop = z.union([z.string(), z.array(z.string()).max(16)]);
const seed = z.number().int();
/** The most alternatives per token a request may ask for (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;
/** The most choices per prompt (each one is a sequence; the server's prompt cap counts prompts × n as well). */
export const MAX_N = 128;
const n = z.number().int().min(1).max(MAX_N);
const streamOptions = z.object({ include_usage: z.boolean().optional() }).nullable();
const notStreaming = z.literal(false, { error: 'streaming is not supported on /generate: leave "stream" out, or use /v1/completions with "stream": true' });

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const message = z.object({
  role: z.enum(['system', 'user', 'assistant', 'developer', 'tool']),
  content: z.union([z.string(), z.array(textPart)]),
});
const responseFormat = z.object({ type: z.string() }).refine((f) => f.type === 'text', {
  error: 'only "text" is supported (the server cannot constrain the output to JSON): leave response_format out or set {"type": "text"}',
  path: ['type'],
});

export const ChatRequest = z.object({
  model: z.string().optional(),
  messages: z.array(message).min(1, { error: 'at least one message is needed' }),
  temperature: temperature.optional(),
  top_p: topP.optional(),
  top_k: topK.optional(),
  min_p: minP.optional(),
  max_tokens: maxTokens.optional(),
  max_completion_tokens: maxTokens.optional(),
  stop: stop.nullable().optional(),
  seed: seed.nullable().optional(),
  n: n.nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: streamOptions.optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullable().optional(),
  response_format: responseFormat.optional(),
  /** vLLM's: tokens in logprobs as "token_id:ID" instead of their text. */
  return_tokens_as_token_ids: z.boolean().optional(),
}).refine((b) => !b.top_logprobs || b.logprobs === true, {
  error: 'top_logprobs needs "logprobs": true',
  path: ['top_logprobs'],
});
export type ChatRequest = z.infer<typeof ChatRequest>;

const tokenIds = z.array(z.number().int().min(0)).min(1, { error: 'a token-id prompt needs at least one token' });
const textPrompt = z.string().min(1, { error: 'a prompt needs at least one character' });

export const CompletionRequest = z.object({
  model: z.string().optional(),
  /** A string, a list of strings, a list of token ids, or a list of such lists: one prompt each. */
  prompt: z.union([
    textPrompt,
    z.array(textPrompt).min(1, { error: 'give at least one prompt' }),
    tokenIds,
    z.array(tokenIds).min(1, { error: 'give at least one prompt' }),
  ], { error: 'expected a string, a list of strings, a list of token ids, or a list of token-id lists' }),
  temperature: temperature.optional(),
  top_p: topP.optional(),
  top_k: topK.optional(),
  min_p: minP.optional(),
  /** 0 with echo: the prompt's log-probabilities alone. */
  max_tokens: z.number().int().min(0).nullable().optional(),
  stop: stop.nullable().optional(),
  seed: seed.nullable().optional(),
  n: n.nullable().optional(),
  best_of: n.nullable().optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: streamOptions.optional(),
  echo: z.boolean().nullable().optional(),
  /** true or 0: each token's log-probability; k > 0: also the k most likely tokens at each step. */
  logprobs: z.union([z.boolean(), z.number().int().min(0).max(MAX_TOP_LOGPROBS)]).nullable().optional(),
  return_tokens_as_token_ids: z.boolean().optional(),
  /** vLLM's and SGLang's: more tokens that end a choice (finish_reason "stop", matched_stop names the token). */
  stop_token_ids: z.array(z.number().int().min(0)).nullable().optional(),
}).refine((b) => b.best_of == null || b.best_of === (b.n ?? 1), {
  error: 'best_of other than n is not supported: leave it out (every sampled choice is returned)',
  path: ['best_of'],
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const SamplingParamsBody = z.object({
  temperature: temperature.optional(),
  top_p: topP.optional(),
  top_k: topK.optional(),
  min_p: minP.optional(),
  max_new_tokens: z.number().int().min(0).optional(),
  stop: stop.optional(),
  stop_token_ids: z.array(z.number().int().min(0)).optional(),
  seed: seed.optional(),
  /** Outputs per prompt (SGLang's parallel sampling): the answer is then a list, prompt-major. */
  n: n.optional(),
});

export const GenerateRequest = z
  .object({
    text: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
    input_ids: z.union([z.array(z.number().int().min(0)).min(1), z.array(z.array(z.number().int().min(0)).min(1)).min(1)]).optional(),
    sampling_params: SamplingParamsBody.optional(),
    return_logprob: z.boolean().optional(),
    stream: notStreaming.optional(),
  })
  .refine((b) => (b.text === undefined) !== (b.input_ids === undefined), {
    error: 'give exactly one of "text" (a string or a list of strings) or "input_ids" (a list of token ids, or a list of such lists)',
    path: ['text'],
  });
export type GenerateRequest = z.infer<typeof GenerateRequest>;

/** A request the server refuses: HTTP status, message, the offending field, and headers to send (e.g. Retry-After). */
export class ApiError extends Error {
  constructor(
    readonly status: number, message: string, readonly param?: string, readonly headers: Record<string, string> = {},
    /** OpenAI's error code, e.g. model_not_found (default: the status). */
    readonly code?: string,
  ) {
    super(message);
  }
}

export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(body)';
}

/** Parses a body or throws a 400 that names the first bad field and what it expects. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = fieldPath(issue.path);
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : '';
  throw new ApiError(400, `${field}: ${issue.message}${more}`, field);
}

export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop == null) return [];
  return (Array.isArray(stop) ? stop : [stop]).filter((s) => s.length > 0);
}

export function messageText(content: string | { text: string }[]): string {
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}
