/**
 * Batched generation on a decoder session (engine/decoder.ts). Prompts of different lengths
 * are left-padded into one batch; an attention mask hides the padding and positions count
 * only real tokens, so each row continues exactly as it would alone. A row that has finished
 * stays in the batch on padding whose outputs nobody reads. With the KV cache each step feeds one
 * token per row; without it the whole sequence is recomputed (used to check the cache).
 */
import { Rng, seedFromString } from '../common/rng.ts';
import { DecoderSession } from './decoder.ts';
import type { CausalLM } from './model.ts';
import type { SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Seed of the sampling; row i draws from its own stream, so rows do not depend on each other. */
  seed?: number;
  /**
   * The rows are rows firstRow.. of a larger batch with the same seed: row i draws from the
   * stream of row firstRow + i, so a batch sampled in parts draws what it would whole. Default 0.
   */
  firstRow?: number;
  /** Generation ends for a row when it produces one of these (the token is kept in the output). */
  stopTokenIds?: number[];
  /** Generation ends for a row when its decoded continuation contains one of these (needs `decode`). */
  stopStrings?: string[];
  decode?: (ids: number[]) => string;
  /** Token used for left padding (never attended to). Default 0. */
  padTokenId?: number;
  /** Default true. */
  useCache?: boolean;
}

export type FinishReason = 'stop_token' | 'stop_string' | 'length';

export interface GenerateResult {
  /** New tokens of each row (prompt excluded). */
  tokens: number[][];
  /** Log-probability of each new token under the model (temperature 1, no truncation). */
  logprobs: number[][];
  finishReasons: FinishReason[];
}

/**
 * The seed of row `row`'s own random stream in a batch generated with `seed`:
 * `new Rng(rowSeed(seed, row))` is `new Rng(seed).fork(\`row ${row}\`)`. The server gives
 * choice k of a request the stream of row k, so a request samples what `generate` would.
 */
export function rowSeed(seed: number, row: number): number {
  return (new Rng(seed).nextU32() ^ seedFromString(`row ${row}`)) >>> 0;
}

export function generate(model: CausalLM, prompts: number[][], opts: GenerateOptions): GenerateResult {
  const B = prompts.length;
  if (B === 0) return { tokens: [], logprobs: [], finishReasons: [] };
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  if (opts.stopStrings?.length && !opts.decode) throw new Error('generate: stopStrings need a decode function');
  const stopIds = new Set(opts.stopTokenIds ?? []);
  const sampling: SamplingOptions = { temperature: opts.temperature, topK: opts.topK, topP: opts.topP, minP: opts.minP };
  const tokens: number[][] = prompts.map(() => []);
  const logprobs: number[][] = prompts.map(() => []);
  const finish: (FinishReason | undefined)[] = prompts.map(() => undefined);
  let live = B;
  const session = new DecoderSession(model, { padTokenId: opts.padTokenId, useCache: opts.useCache });
  try {
    try {
      session.add(prompts.map((promptIds, i) => ({ id: i, promptIds, sampling, seed: rowSeed(opts.seed ?? 0, (opts.firstRow ?? 0) + i) })));
    } catch (err) {
      throw new Error(`generate: ${(err as Error).message}`);
    }
    for (let step = 0; step < opts.maxNewTokens && live > 0; step++) {
      const done: number[] = [];
      for (const { id, token, logprob } of session.step()) {
        tokens[id].push(token);
        logprobs[id].push(logprob);
        if (stopIds.has(token)) finish[id] = 'stop_token';
        else if (opts.stopStrings?.length && opts.decode) {
          const text = opts.decode(tokens[id]);
          if (opts.stopStrings.some((s) => text.includes(s))) finish[id] = 'stop_string';
        }
        if (finish[id] !== undefined) done.push(id);
      }
      // Finished rows keep running on padding whose outputs nobody reads: the batch keeps its shape.
      session.retire(done);
      live -= done.length;
    }
  } finally {
    session.dispose();
  }
  return { tokens, logprobs, finishReasons: finish.map((f) => f ?? 'length') };
}
