/**
 * Batched generation. Prompts of different lengths are left-padded into one batch; an
 * attention mask hides the padding and positions count only real tokens, so each row
 * continues exactly as it would alone. With the KV cache each step feeds one token per
 * row; without it the whole sequence is recomputed (used to check the cache).
 */
import * as tf from './tf.ts';
import { Rng, seedFromString } from '../common/rng.ts';
import { createCache, disposeCache, type CausalLM } from './model.ts';
import { sampleWithLogProb, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Seed of the sampling; row i draws from its own stream, so rows do not depend on each other. */
  seed?: number;
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
  const V = model.config.vocab_size;
  for (const p of prompts) for (const t of p) {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`generate: token id ${t} is outside the vocabulary [0, ${V})`);
  }
  const pad = opts.padTokenId ?? 0;
  const useCache = opts.useCache ?? true;
  const stopIds = new Set(opts.stopTokenIds ?? []);
  const rngs = prompts.map((_, i) => new Rng(rowSeed(opts.seed ?? 0, i)));

  // Left-padded batch: mask[b][s] = 1 for real tokens.
  const L = Math.max(...prompts.map((p) => p.length));
  const seqs = prompts.map((p) => [...new Array<number>(L - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(L - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const nextPos = prompts.map((p) => p.length);

  const tokens: number[][] = prompts.map(() => []);
  const logprobs: number[][] = prompts.map(() => []);
  const finish: (FinishReason | undefined)[] = prompts.map(() => undefined);
  const cache = useCache ? createCache() : undefined;
  try {
    for (let step = 0; step < opts.maxNewTokens && finish.some((f) => f === undefined); step++) {
      let logits: tf.Tensor3D;
      if (cache && step > 0) {
        const ids = tf.tensor2d(seqs.map((s) => [s[s.length - 1]]), [B, 1], 'int32');
        logits = model.forward(ids, { cache, attentionMask: mask, positions: nextPos.map((p) => [p - 1]), lastOnly: true });
        ids.dispose();
      } else {
        const ids = tf.tensor2d(seqs, [B, seqs[0].length], 'int32');
        logits = model.forward(ids, { cache, attentionMask: mask, lastOnly: true });
        ids.dispose();
      }
      const data = logits.dataSync() as Float32Array;
      logits.dispose();
      for (let b = 0; b < B; b++) {
        let token = pad;
        const active = finish[b] === undefined;
        if (active) {
          const row = data.subarray(b * V, (b + 1) * V);
          const drawn = sampleWithLogProb(row, opts, rngs[b]);
          token = drawn.token;
          tokens[b].push(token);
          logprobs[b].push(drawn.logprob);
          if (stopIds.has(token)) finish[b] = 'stop_token';
          else if (opts.stopStrings?.length && opts.decode) {
            const text = opts.decode(tokens[b]);
            if (opts.stopStrings.some((s) => text.includes(s))) finish[b] = 'stop_string';
          }
        }
        // Finished rows keep running on padding that nothing attends to.
        seqs[b].push(token);
        mask[b].push(active ? 1 : 0);
        nextPos[b] += 1;
      }
    }
  } finally {
    if (cache) disposeCache(cache);
  }
  return { tokens, logprobs, finishReasons: finish.map((f) => f ?? 'length') };
}
