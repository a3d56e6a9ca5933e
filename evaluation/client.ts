/**
 * The evaluation client: asks every MCQ of an evaluation file through any OpenAI-compatible
 * server (SGLang, vLLM, OpenAI, or the built-in server), scores the answers, and writes
 *   results.jsonl  every item: source, id, prompt, output, extracted letters, gold, correct
 *   report.json    accuracy per source and their average, counts, timing, tokens/s
 * Items already in results.jsonl are not asked again (resume); rows scored by another scorer
 * are scored again from their output.
 *
 * As HuatuoGPT-o1 asks (its evaluation/eval.py), by default: POST /v1/completions with the
 * prompt rendered through the model's chat template (`tokenizer`: the model's folder), temperature
 * 0.5, top-p 0.9, at most 2000 new tokens, the output post-processed (`</s>` removed, one leading
 * space removed) and scored by the `huatuo` scorer. `api: 'chat'` sends /v1/chat/completions
 * instead and lets the server apply its template. Each item is its own request, with its own seed.
 *
 * An item whose request the server refuses (its prompt does not fit the model's context, or
 * another 4xx about that request) is recorded as that item's failure and the run goes on;
 * when only the new-token cap does not fit, the item is asked again with the room the
 * context leaves. A failure that is not the item's (server unreachable after the retries,
 * 5xx, a refused key or model, a bad sampling option) stops the run with EvalRunError.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ChatClient, ChatError, type ChatClientConfig, type ChatReply } from '../data/chat-client.ts';
import { loadEvalFile } from '../data/loaders.ts';
import type { McqItem } from '../data/formats.ts';
import { seedFromString } from '../common/rng.ts';
import { writeJsonAtomic } from '../common/fs.ts';
import { UserError } from '../contract/errors.ts';
import { mcqPrompt, PlainChatTemplate, postprocessOutput } from './prompts.ts';
import { DEFAULT_SCORER, SCORERS, scoreResponse, summarize, type AccuracySummary, type Policy, type ScorerName } from './scorer.ts';
import { appendResult, readResults, rewriteResults, type ItemError, type ResultRow } from './results.ts';

export interface EvalOptions {
  /** Evaluation file (source name → MCQ items). */
  data: string;
  /** e.g. http://127.0.0.1:30000/v1 */
  baseUrl: string;
  model: string;
  /** The server's API key (sent as a Bearer token); takes precedence over apiKeyEnv. */
  apiKey?: string;
  apiKeyEnv?: string;
  /** Folder for results.jsonl and report.json. */
  outDir: string;
  strict?: boolean;
  /** `completions` (default): /v1/completions with the prompt rendered through the chat template; `chat`: /v1/chat/completions. */
  api?: EvalApi;
  /** The model's folder (tokenizer_config.json or chat_template.jinja): its chat template, for the completions API. */
  tokenizer?: string;
  /** The scorer (default huatuo). */
  scorer?: ScorerName;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  /** Base seed; each item's request seed is derived from it and the item id. */
  seed?: number;
  concurrency?: number;
  limitPerSource?: number;
  /** The headline policy (default: the scorer's, max for huatuo, last for rules). */
  policy?: Policy;
  /** Retry and backoff knobs of the HTTP client (see data/chat-client.ts). */
  http?: Pick<ChatClientConfig, 'maxRetries' | 'initialBackoffMs' | 'maxBackoffMs' | 'timeoutMs'>;
  onProgress?(done: number, total: number, row?: ResultRow): void;
  signal?: AbortSignal;
}

export interface EvalReport {
  model: string;
  base_url: string;
  data: string;
  prompt: 'default' | 'strict';
  api: EvalApi;
  scorer: ScorerName;
  sampling: { temperature: number; top_p: number; max_tokens: number; seed: number };
  accuracy: AccuracySummary;
  /**
   * failed: items recorded as failed (results.jsonl `error`), resumed ones included;
   * prompt_too_long: of those, prompts longer than the model's context; no_answer: answered
   * items from which no letter could be extracted.
   */
  counts: {
    items: number; resumed: number; asked: number; failed: number; prompt_too_long: number; retries: number; no_answer: number;
    /** Answered items whose output was empty after post-processing (left out of the accuracies by the huatuo scorer). */
    empty_output: number;
    /** Resumed rows scored again because another scorer had scored them. */
    rescored: number;
  };
  timing: { started_at: string; finished_at: string; wall_s: number };
  tokens: { prompt: number; completion: number; completion_per_s: number };
}

export type EvalApi = 'completions' | 'chat';
export const EVAL_APIS: readonly EvalApi[] = ['completions', 'chat'];

export const RESULTS_FILE = 'results.jsonl';
export const REPORT_FILE = 'report.json';

interface EvalItem {
  source: string;
  index: number;
  id: string;
  item: McqItem;
}

/** The items to evaluate, in file order, the first `limit` of each source. */
export function evalItems(file: string, limitPerSource?: number): EvalItem[] {
  const { sources } = loadEvalFile(file);
  return Object.entries(sources).flatMap(([source, items]) =>
    items.slice(0, limitPerSource ?? items.length).map((item, index) => ({ source, index, id: `${source}/${index}`, item })));
}

export async function runEval(opts: EvalOptions): Promise<EvalReport> {
  const started = new Date();
  const t0 = performance.now();
  const strict = opts.strict ?? false;
  const temperature = opts.temperature ?? 0.5;
  const topP = opts.topP ?? 0.9;
  const maxTokens = opts.maxTokens ?? 2000;
  const seed = opts.seed ?? 0;
  const api = opts.api ?? 'completions';
  const scorer = SCORERS[opts.scorer ?? DEFAULT_SCORER];
  const policy = opts.policy ?? scorer.policy;
  const items = evalItems(opts.data, opts.limitPerSource);
  const template = api === 'completions' ? await loadChatTemplate(opts.tokenizer) : undefined;
  mkdirSync(opts.outDir, { recursive: true });
  const resultsFile = join(opts.outDir, RESULTS_FILE);

  // What is sent: the prompt itself (chat), or rendered through the chat template (completions).
  const prompts = new Map(items.map((e) => {
    const prompt = mcqPrompt(e.item, strict);
    return [e.id, template ? template.render(prompt) : prompt];
  }));
  const byId = new Map(items.map((e) => [e.id, e]));
  // A row counts as done only if it was asked with the same prompt (same data, variant and template).
  const done = new Map<string, ResultRow>();
  let rescored = 0;
  const kept: ResultRow[] = [];
  for (const row of readResults(resultsFile)) {
    kept.push(row);
    if (prompts.get(row.id) !== row.prompt) continue;
    if (!row.error && (row.scorer ?? 'rules') !== scorer.name) {
      // Scored by another scorer: scored again from the output, and the file rewritten below.
      const s = scoreResponse(row.output, byId.get(row.id)!.item, scorer);
      Object.assign(row, {
        first: s.first, last: s.last, rule: s.rule, gold: s.gold, correct_first: s.correct_first, correct_last: s.correct_last,
        correct: policy === 'first' ? s.correct_first : s.correct_last, scorer: scorer.name,
      });
      rescored++;
    }
    done.set(row.id, row);
  }
  if (rescored > 0) rewriteResults(resultsFile, kept);
  const resumed = done.size;
  const todo = items.filter((e) => !done.has(e.id));

  const client = new ChatClient({
    baseUrl: opts.baseUrl,
    model: opts.model,
    apiKey: opts.apiKey,
    apiKeyEnv: opts.apiKeyEnv,
    concurrency: opts.concurrency ?? 32,
    seed,
    // Long answers from a busy server take minutes: a short timeout would only re-ask them.
    timeoutMs: 30 * 60_000,
    ...opts.http,
  });
  let fatal: Error | undefined;
  let completionTokens = 0;
  let promptTokens = 0;
  // The first failure that is not an item's own stops the requests still waiting.
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  opts.onProgress?.(done.size, items.length);

  await Promise.all(todo.map(async (e) => {
    const itemSeed = seedFromString(`${seed}:${e.id}`);
    const prompt = prompts.get(e.id)!;
    const base = { source: e.source, id: e.id, index: e.index, prompt, seed: itemSeed, scorer: scorer.name };
    let row: ResultRow;
    try {
      const sampling = { temperature, topP, seed: itemSeed, signal };
      const reply = await askFitting(maxTokens, (cap) =>
        api === 'chat' ? client.chat([{ role: 'user', content: prompt }], { ...sampling, maxTokens: cap }) : client.complete(prompt, { ...sampling, maxTokens: cap }));
      if ('error' in reply) {
        row = {
          ...base, output: '', first: null, last: null, rule: null, gold: e.item.answer_idx.trim().toUpperCase(),
          correct_first: false, correct_last: false, correct: false, prompt_tokens: reply.promptTokens ?? 0, completion_tokens: 0,
          error: reply.error, error_message: reply.message,
          ...(reply.contextLength !== undefined ? { context_length: reply.contextLength } : {}),
        };
      } else {
        const output = postprocessOutput(reply.text);
        const s = scoreResponse(output, e.item, scorer);
        row = {
          ...base, output,
          first: s.first, last: s.last, rule: s.rule, gold: s.gold,
          correct_first: s.correct_first, correct_last: s.correct_last,
          correct: policy === 'first' ? s.correct_first : s.correct_last,
          finish_reason: reply.finishReason, prompt_tokens: reply.usage.promptTokens,
          completion_tokens: reply.usage.completionTokens,
        };
        promptTokens += row.prompt_tokens;
        completionTokens += row.completion_tokens;
      }
    } catch (err) {
      if (stop.signal.aborted || opts.signal?.aborted) return; // stopped by the first fatal failure, or cancelled
      fatal ??= err as Error;
      stop.abort();
      return;
    }
    appendResult(resultsFile, row);
    done.set(e.id, row);
    opts.onProgress?.(done.size, items.length, row);
  }));
  if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('evaluation cancelled');
  if (fatal) {
    const url = client.config.baseUrl;
    const status = fatal instanceof ChatError ? fatal.status : undefined;
    const what = !(fatal instanceof ChatError)
      ? `a request failed: ${fatal.message}`
      : status === undefined || status === 429 || status >= 500
        ? `the server at ${url} kept failing after ${client.config.maxRetries} retries (${fatal.message.startsWith(url) ? fatal.message.slice(url.length + 2) : fatal.message}): check that it is running and that the base URL is right`
        : `the server at ${url} refused a request (${fatal.message.startsWith(url) ? fatal.message.slice(url.length + 2) : fatal.message})`;
    const missing = items.length - done.size;
    throw new EvalRunError(`evaluation stopped: ${what}. ${missing} of ${items.length} item(s) have no result yet; the ${done.size} result(s) so far are kept in ${resultsFile}: run again to ask only the missing ones`);
  }

  // Report in file order, whatever order the answers arrived in.
  const rows = items.map((e) => done.get(e.id)!);
  const wall = (performance.now() - t0) / 1000;
  const report: EvalReport = {
    model: opts.model,
    base_url: opts.baseUrl,
    data: opts.data,
    prompt: strict ? 'strict' : 'default',
    api,
    scorer: scorer.name,
    sampling: { temperature, top_p: topP, max_tokens: maxTokens, seed },
    accuracy: summarize(rows, policy, { dropEmpty: scorer.dropsEmpty, scorer: scorer.name }),
    counts: {
      items: rows.length, resumed, asked: todo.length,
      failed: rows.filter((r) => r.error).length, prompt_too_long: rows.filter((r) => r.error === 'prompt_too_long').length,
      retries: client.usage.retries, no_answer: rows.filter((r) => !r.error && r.last === null).length,
      empty_output: rows.filter((r) => !r.error && r.output === '').length, rescored,
    },
    timing: { started_at: started.toISOString(), finished_at: new Date().toISOString(), wall_s: round(wall) },
    tokens: { prompt: promptTokens, completion: completionTokens, completion_per_s: wall > 0 ? round(completionTokens / wall) : 0 },
  };
  writeJsonAtomic(join(opts.outDir, REPORT_FILE), report);
  return report;
}

/** The run stopped for a reason that is not one item's (see the file comment); what is written is kept. */
export class EvalRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalRunError';
  }
}

/** An item the server refused: recorded in its row instead of an answer. */
export interface ItemFailure {
  error: ItemError;
  message: string;
  promptTokens?: number;
  contextLength?: number;
}

/**
 * One item's request. When the server says the new-token cap does not fit what the context
 * leaves after the prompt, the item is asked once more with that room (the answer may then
 * end with finish reason "length"); a refusal about the request itself becomes an
 * ItemFailure; anything else is thrown.
 */
async function askFitting(asked: number, ask: (maxTokens: number) => Promise<ChatReply>): Promise<ChatReply | ItemFailure> {
  let maxTokens = asked;
  for (let refit = 0; ; refit++) {
    try {
      return await ask(maxTokens);
    } catch (err) {
      const refusal = itemRefusal(err);
      if (!refusal) throw err;
      const { promptTokens, contextLength } = refusal;
      if (promptTokens !== undefined && contextLength !== undefined) {
        if (promptTokens >= contextLength) {
          return { ...refusal, error: 'prompt_too_long' };
        }
        const room = contextLength - promptTokens;
        if (refit === 0 && maxTokens > room) {
          maxTokens = room;
          continue;
        }
      }
      return { ...refusal, error: 'rejected' };
    }
  }
}

/** Request fields that carry the prompt, as servers name them in a 400's `param`. */
const PROMPT_FIELDS = /^(messages|prompt|input|input_ids|text)\b/;

/**
 * How servers say a request does not fit the context: [pattern, group of the prompt's
 * tokens, group of the context length]. The built-in server (evaluation/server.ts), SGLang,
 * vLLM and OpenAI.
 */
const CONTEXT_MESSAGES: [RegExp, number, number][] = [
  // "more than N" when the server stopped counting past the context: N is a lower bound.
  [/the prompt has (?:more than )?(\d+) tokens (?:but|and) the (?:model's )?context is (\d+)/i, 1, 2],
  [/input \((\d+) tokens\) is longer than the model's context length \((\d+) tokens\)/i, 1, 2],
  [/maximum context length is (\d+) tokens.*?\((\d+) in the messages/is, 2, 1],
  [/maximum context length is (\d+) tokens.*?messages resulted in (\d+) tokens/is, 2, 1],
];

/** A refusal about this request (4xx naming the prompt or the context), with the token counts when given; else undefined. */
function itemRefusal(err: unknown): Omit<ItemFailure, 'error'> | undefined {
  if (!(err instanceof ChatError) || (err.status !== 400 && err.status !== 413 && err.status !== 422)) return undefined;
  let message = err.body ?? err.message;
  let param: unknown;
  try {
    const body = JSON.parse(err.body ?? '') as { error?: { message?: unknown; param?: unknown } | string; message?: unknown; detail?: unknown };
    const e = typeof body.error === 'object' && body.error ? body.error : undefined;
    const text = e?.message ?? (typeof body.error === 'string' ? body.error : undefined) ?? body.message ?? body.detail;
    if (typeof text === 'string') message = text;
    param = e?.param;
  } catch {
    // not JSON: the raw body is the message
  }
  for (const [re, p, c] of CONTEXT_MESSAGES) {
    const m = re.exec(message);
    if (m) return { message, promptTokens: Number(m[p]), contextLength: Number(m[c]) };
  }
  const aboutPrompt = err.status === 413 || (typeof param === 'string' && PROMPT_FIELDS.test(param)) || /context length|too long|too many tokens/i.test(message);
  return aboutPrompt ? { message } : undefined;
}

/**
 * The model's chat template from its folder, compiled as HuatuoGPT-o1 compiles it; the
 * completions API cannot do without one.
 */
async function loadChatTemplate(dir: string | undefined): Promise<PlainChatTemplate> {
  if (!dir) {
    throw new UserError('the completions API (the default) sends the prompt rendered through the model\'s chat template: give the served model\'s folder ' +
      '(--tokenizer DIR; in a pipeline with.server.tokenizer), or use the chat API, where the server applies its template (--api chat; api: chat)');
  }
  const { Tokenizer } = await import('../engine/tokenizer.ts');
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = Tokenizer.load(dir);
  } catch (err) {
    throw new UserError(`${dir}: cannot read the tokenizer for its chat template: ${(err as Error).message}`);
  }
  if (tok.chatTemplate === null) {
    throw new UserError(`${dir}: the tokenizer has no chat template (tokenizer_config.json "chat_template" or chat_template.jinja): add one, or use the chat API`);
  }
  const bos = tok.config.bos_token;
  const bosText = typeof bos === 'string' ? bos : bos && typeof bos === 'object' && typeof (bos as { content?: unknown }).content === 'string' ? (bos as { content: string }).content : null;
  try {
    return new PlainChatTemplate(tok.chatTemplate, bosText);
  } catch (err) {
    throw new UserError(`${dir}: the chat template does not parse: ${(err as Error).message}`);
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
