/**
 * The evaluation client: asks every MCQ of an evaluation file through any
 * OpenAI-compatible /v1/chat/completions endpoint (SGLang, vLLM, OpenAI, or the
 * built-in server), scores the answers, and writes
 *   results.jsonl  every item: source, id, prompt, output, extracted letters, gold, correct
 *   report.json    accuracy per source and their average, counts, timing, tokens/s
 * Items already in results.jsonl are not asked again (resume).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ChatClient, type ChatClientConfig } from '../data/chat-client.ts';
import { loadEvalFile } from '../data/loaders.ts';
import type { McqItem } from '../data/formats.ts';
import { seedFromString } from '../common/rng.ts';
import { writeJsonAtomic } from '../common/fs.ts';
import { mcqMessages } from './prompts.ts';
import { scoreResponse, summarize, type AccuracySummary, type Policy } from './scorer.ts';
import { appendResult, readResults, type ResultRow } from './results.ts';

export interface EvalOptions {
  /** Evaluation file (source name → MCQ items). */
  data: string;
  /** e.g. http://127.0.0.1:30000/v1 */
  baseUrl: string;
  model: string;
  apiKeyEnv?: string;
  /** Folder for results.jsonl and report.json. */
  outDir: string;
  strict?: boolean;
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  /** Base seed; each item's request seed is derived from it and the item id. */
  seed?: number;
  concurrency?: number;
  limitPerSource?: number;
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
  sampling: { temperature: number; top_p: number; max_tokens: number; seed: number };
  accuracy: AccuracySummary;
  counts: { items: number; resumed: number; asked: number; failed: number; retries: number; no_answer: number };
  timing: { started_at: string; finished_at: string; wall_s: number };
  tokens: { prompt: number; completion: number; completion_per_s: number };
}

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
  const maxTokens = opts.maxTokens ?? 2048;
  const seed = opts.seed ?? 0;
  const policy = opts.policy ?? 'last';
  mkdirSync(opts.outDir, { recursive: true });
  const resultsFile = join(opts.outDir, RESULTS_FILE);

  const items = evalItems(opts.data, opts.limitPerSource);
  const prompts = new Map(items.map((e) => [e.id, mcqMessages(e.item, strict)[0].content]));
  // A row counts as done only if it was asked with the same prompt (same data and variant).
  const done = new Map<string, ResultRow>();
  for (const row of readResults(resultsFile)) if (prompts.get(row.id) === row.prompt) done.set(row.id, row);
  const resumed = done.size;
  const todo = items.filter((e) => !done.has(e.id));

  const client = new ChatClient({
    baseUrl: opts.baseUrl,
    model: opts.model,
    apiKeyEnv: opts.apiKeyEnv,
    concurrency: opts.concurrency ?? 32,
    seed,
    // Long answers from a busy server take minutes: a short timeout would only re-ask them.
    timeoutMs: 30 * 60_000,
    ...opts.http,
  });
  let failed = 0;
  let firstError: Error | undefined;
  let completionTokens = 0;
  let promptTokens = 0;
  opts.onProgress?.(done.size, items.length);

  await Promise.all(todo.map(async (e) => {
    const itemSeed = seedFromString(`${seed}:${e.id}`);
    try {
      const reply = await client.chat(mcqMessages(e.item, strict), { temperature, topP, maxTokens, seed: itemSeed, signal: opts.signal });
      const s = scoreResponse(reply.text, e.item);
      const row: ResultRow = {
        source: e.source, id: e.id, index: e.index, prompt: prompts.get(e.id)!, output: reply.text,
        first: s.first, last: s.last, rule: s.rule, gold: s.gold,
        correct_first: s.correct_first, correct_last: s.correct_last,
        correct: policy === 'first' ? s.correct_first : s.correct_last,
        finish_reason: reply.finishReason, prompt_tokens: reply.usage.promptTokens,
        completion_tokens: reply.usage.completionTokens, seed: itemSeed,
      };
      appendResult(resultsFile, row);
      done.set(e.id, row);
      promptTokens += row.prompt_tokens;
      completionTokens += row.completion_tokens;
      opts.onProgress?.(done.size, items.length, row);
    } catch (err) {
      failed++;
      firstError ??= err as Error;
    }
  }));
  if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('evaluation cancelled');
  if (failed > 0) {
    throw new Error(`${failed} of ${todo.length} requests failed (first: ${firstError?.message}); ` +
      `the ${done.size} answers so far are kept in ${resultsFile}: run again to ask only the missing ones`);
  }

  // Report in file order, whatever order the answers arrived in.
  const rows = items.map((e) => done.get(e.id)!);
  const wall = (performance.now() - t0) / 1000;
  const report: EvalReport = {
    model: opts.model,
    base_url: opts.baseUrl,
    data: opts.data,
    prompt: strict ? 'strict' : 'default',
    sampling: { temperature, top_p: topP, max_tokens: maxTokens, seed },
    accuracy: summarize(rows, policy),
    counts: {
      items: rows.length, resumed, asked: todo.length, failed,
      retries: client.usage.retries, no_answer: rows.filter((r) => r.last === null).length,
    },
    timing: { started_at: started.toISOString(), finished_at: new Date().toISOString(), wall_s: round(wall) },
    tokens: { prompt: promptTokens, completion: completionTokens, completion_per_s: wall > 0 ? round(completionTokens / wall) : 0 },
  };
  writeJsonAtomic(join(opts.outDir, REPORT_FILE), report);
  return report;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
