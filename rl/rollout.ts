/**
 * Rollout: each prompt (the verifiable question as the only user turn, chat-templated,
 * with the generation prompt) is answered `numGenerations` times by sampling. Responses
 * end at an end-of-turn token or after `responseLength` tokens.
 */
import type { VerifiableItem } from '../data/formats.ts';
import { generate } from '../engine/generate.ts';
import type { CausalLM } from '../engine/model.ts';
import type { Tokenizer } from '../engine/tokenizer.ts';

/** Prompt token ids of one problem, cut from the left to at most maxLen tokens. */
export function promptIds(tok: Tokenizer, item: VerifiableItem, maxLen: number): number[] {
  const ids = tok.encodeChat([{ role: 'user', content: item['Open-ended Verifiable Question'] }]);
  return ids.length > maxLen ? ids.slice(ids.length - maxLen) : ids;
}

export interface Rollout {
  /** Per response: which item of the batch it answers (its GRPO group). */
  group: number[];
  prompts: number[][];
  responses: number[][];
  /** Decoded responses, special tokens removed. */
  texts: string[];
  /** Whether the response ended by itself (end-of-turn token) rather than by length. */
  finished: boolean[];
}

export interface RolloutOptions {
  numGenerations: number;
  temperature: number;
  topP: number;
  responseLength: number;
  seed: number;
  /** Rows generated together (default: all). */
  batchSize?: number;
}

export function rollout(model: CausalLM, tok: Tokenizer, prompts: number[][], o: RolloutOptions): Rollout {
  const group: number[] = [];
  const rows: number[][] = [];
  prompts.forEach((p, i) => {
    for (let g = 0; g < o.numGenerations; g++) { group.push(i); rows.push(p); }
  });
  const size = o.batchSize ?? rows.length;
  const responses: number[][] = [];
  const finished: boolean[] = [];
  for (let start = 0; start < rows.length; start += size) {
    const r = generate(model, rows.slice(start, start + size), {
      maxNewTokens: o.responseLength,
      temperature: o.temperature,
      topP: o.topP,
      seed: o.seed + start,
      stopTokenIds: tok.eosTokenIds,
      padTokenId: tok.batchPadId,
    });
    responses.push(...r.tokens);
    finished.push(...r.finishReasons.map((f) => f !== 'length'));
  }
  const texts = responses.map((ids) => tok.decode(ids, { skipSpecialTokens: true }));
  return { group, prompts: rows, responses, texts, finished };
}
