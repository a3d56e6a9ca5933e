/** Picking the next token from one row of logits: greedy, or temperature / top-k / top-p / min-p sampling. */
import type { Rng } from '../common/rng.ts';
import { hostRankDescending } from './attention-kernel.ts';

export interface SamplingOptions {
  /** 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 = all). */
  topP?: number;
  /**
   * Keep only the tokens at least this fraction as likely as the most likely one, after the
   * temperature (0 = all), as vLLM and SGLang apply min_p. With top-k and top-p, a token must
   * pass every cut.
   */
  minP?: number;
}

/** log-softmax of one row at one index, in float64. */
export function logProbOf(logits: Float32Array, index: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[index] - max - Math.log(sum);
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

let buffer = new Float64Array(0);
function scratch(n: number): Float64Array {
  if (buffer.length < n) buffer = new Float64Array(n);
  return buffer;
}

/**
 * The next token for one row of logits and its log-probability (as `logProbOf`). Plain sampling
 * at temperature 1 draws from the very exponentials the log-softmax needs, so it sums them once;
 * the results are bit-identical to `sampleToken` then `logProbOf`.
 *
 * With `exps` (exp(logits - max) of the row in float32, as a decoder session has them from its
 * forward pass), no exponential is computed here: their float64 sum gives the log-probability
 * (within float32 rounding of `logProbOf`'s), and plain sampling walks them. Other sampling
 * (a temperature, top-k, top-p, min-p) draws as `sampleToken`.
 */
export function sampleWithLogProb(logits: Float32Array, opts: SamplingOptions, rng: Rng, exps?: Float32Array): { token: number; logprob: number } {
  const V = logits.length;
  const plain = (opts.temperature ?? 1) === 1 && !(opts.topK && opts.topK > 0 && opts.topK < V) && (opts.topP ?? 1) >= 1 && !((opts.minP ?? 0) > 0);
  if (!exps && !plain) {
    const token = sampleToken(logits, opts, rng);
    return { token, logprob: logProbOf(logits, token) };
  }
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  let w: Float32Array | Float64Array;
  let sum = 0;
  if (exps) {
    if (exps.length !== V) throw new Error(`sampleWithLogProb: ${exps.length} exponentials for ${V} logits`);
    w = exps;
    for (let i = 0; i < V; i++) sum += exps[i];
  } else {
    w = scratch(V);
    for (let i = 0; i < V; i++) sum += (w[i] = Math.exp(logits[i] - max));
  }
  let token = -1;
  if (plain) {
    let u = rng.next() * sum;
    for (let i = 0; i < V; i++) {
      u -= w[i];
      if (u < 0) { token = i; break; }
    }
    if (token < 0) token = argmax(logits);
  } else {
    token = sampleToken(logits, opts, rng);
  }
  return { token, logprob: logits[token] - max - Math.log(sum) };
}

export interface TokenLogprob {
  token: number;
  logprob: number;
}

/**
 * The k most likely tokens of a logits row with their log-probabilities, most likely first (ties:
 * lower id first). With the row's `exps` (as `sampleWithLogProb` takes them), the log-probabilities
 * are computed from them, the same as the sampled token's.
 */
export function topLogprobs(logits: Float32Array, k: number, exps?: Float32Array): TokenLogprob[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  if (exps) for (let i = 0; i < logits.length; i++) sum += exps[i];
  else for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  // As logProbOf rounds it, so a token reads the same log-probability as the sampled one and as an alternative.
  const logSum = Math.log(sum);
  // A small sorted list of the best so far: k is small (the server allows at most 20).
  const best: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (best.length === k && logits[i] <= logits[best[k - 1]]) continue;
    let at = best.length;
    while (at > 0 && logits[best[at - 1]] < logits[i]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best.map((token) => ({ token, logprob: logits[token] - max - logSum }));
}

/** The next token for one row of logits. */
export function sampleToken(logits: Float32Array, opts: SamplingOptions, rng: Rng): number {
  const temperature = opts.temperature ?? 1;
  if (temperature <= 0) return argmax(logits);
  const V = logits.length;
  const topK = opts.topK && opts.topK > 0 ? Math.min(opts.topK, V) : V;
  const topP = opts.topP ?? 1;
  const minP = opts.minP ?? 0;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
  if (topK === V && topP >= 1 && !(minP > 0)) {
    // Plain sampling: one pass of exponentials, then walk to the drawn mass.
    const w = scratch(V);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += (w[i] = Math.exp((logits[i] - max) / temperature));
    let u = rng.next() * sum;
    for (let i = 0; i < V; i++) {
      u -= w[i];
      if (u < 0) return i;
    }
    return argmax(logits);
  }
  // Candidates from most to least likely (ties by lower id), cut by top-k, then top-p, then
  // min-p (each keeps a prefix of the list, so their order does not matter). Only those whose
  // weight can move the float64 total need ranking: weights are summed from the largest down,
  // the first being exp(0) = 1, so the total is at least 1 throughout, and a weight under 2^-53
  // (half the total's last bit at 1) leaves it unchanged, and all such come last. Logits more
  // than 36.8 temperatures under the maximum (e^-36.8 < 2^-53) are left unranked; should the cuts
  // reach past the ranked ones, the whole row is ranked: the same token either way
  // (worth it when they are few: a peaked row, a low temperature).
  const floor = max - 36.8 * temperature;
  let n = 0;
  for (let i = 0; i < V; i++) if (logits[i] > floor) n++;
  if (n > 0 && n * 4 < V) {
    if (subIds.length < n) {
      subIds = new Int32Array(V);
      subLogits = new Float32Array(V);
    }
    n = 0;
    for (let i = 0; i < V; i++) {
      if (logits[i] > floor) {
        subIds[n] = i;
        subLogits[n++] = logits[i];
      }
    }
    const r = rankDescending(subLogits.subarray(0, n));
    for (let j = 0; j < n; j++) r[j] = subIds[r[j]];
    const token = cutAndDraw(logits, r, max, temperature, topK, topP, minP, rng, false);
    if (token >= 0) return token;
  }
  return cutAndDraw(logits, rankDescending(logits), max, temperature, topK, topP, minP, rng, true);
}

let subIds = new Int32Array(0);
let subLogits = new Float32Array(0);

/**
 * Top-k, top-p and min-p over candidate ids ranked from the most likely (`ranked`: the whole row
 * when `whole`, else every candidate whose weight can move the total), then the draw; -1, with
 * nothing drawn, when the cuts would keep a candidate beyond a partial ranking.
 */
function cutAndDraw(logits: Float32Array, ranked: Int32Array, max: number, temperature: number, topK: number, topP: number, minP: number, rng: Rng, whole: boolean): number {
  const n = Math.min(topK, ranked.length);
  const probs = scratch(n);
  let total = 0;
  for (let j = 0; j < n; j++) total += (probs[j] = Math.exp((logits[ranked[j]] - max) / temperature));
  let keep = -1, cum = 0;
  for (let j = 0; j < n; j++) {
    cum += probs[j] / total;
    if (cum >= topP) { keep = j + 1; break; }
  }
  if (keep < 0) {
    // Top-p not reached among the ranked: all top-k are kept, some of them unranked unless top-k ends within.
    if (!whole && topK > n) return -1;
    keep = n;
  }
  // probs[0] is the most likely token's weight: the min-p threshold is relative to it.
  if (minP > 0) while (keep > 1 && probs[keep - 1] < minP * probs[0]) keep--;
  let mass = 0;
  for (let j = 0; j < keep; j++) mass += probs[j];
  let u = rng.next() * mass;
  for (let j = 0; j < keep; j++) {
    u -= probs[j];
    if (u < 0) return ranked[j];
  }
  return ranked[keep - 1];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
let keysA = new Uint32Array(0), keysB = new Uint32Array(0);
let idsA = new Int32Array(0), idsB = new Int32Array(0);
const counts = new Uint32Array(2048);

/**
 * The ids of a row of logits from the largest logit to the smallest, equal logits by lower id
 * (the order of a sort by `logits[b] - logits[a] || a - b`, -0 and +0 equal); a view of a buffer
 * that the next call reuses. Each logit's float32 bits become an order-preserving 32-bit integer,
 * inverted, and a stable radix sort (three passes of 11 bits) orders the ids by it: linear in the
 * row, where sorting the ids with a comparator took some 0.4 ms a row of 1,024 logits and 110 ms a
 * row of 152,000. The sort runs in the engine's WebAssembly module (`hostRankDescending`, the same
 * keys and passes), else here in JavaScript (`rankDescendingJs`).
 */
export function rankDescending(logits: Float32Array): Int32Array {
  return hostRankDescending(logits) ?? rankDescendingJs(logits);
}

/** `rankDescending` in JavaScript: where the module cannot load, and for tests. */
export function rankDescendingJs(logits: Float32Array): Int32Array {
  const V = logits.length;
  if (keysA.length < V) {
    keysA = new Uint32Array(V);
    keysB = new Uint32Array(V);
    idsA = new Int32Array(V);
    idsB = new Int32Array(V);
  }
  let ka = keysA, kb = keysB, ia = idsA, ib = idsB;
  for (let i = 0; i < V; i++) {
    f32[0] = logits[i] === 0 ? 0 : logits[i];
    const bits = u32[0];
    // Ascending float order as unsigned integers: negative values flipped whole, positive ones with the sign bit set.
    ka[i] = bits & 0x80000000 ? bits : ~bits & 0x7fffffff;
    ia[i] = i;
  }
  for (let shift = 0; shift < 32; shift += 11) {
    counts.fill(0);
    for (let i = 0; i < V; i++) counts[(ka[i] >>> shift) & 2047]++;
    let at = 0;
    for (let d = 0; d < 2048; d++) {
      const n = counts[d];
      counts[d] = at;
      at += n;
    }
    for (let i = 0; i < V; i++) {
      const to = counts[(ka[i] >>> shift) & 2047]++;
      kb[to] = ka[i];
      ib[to] = ia[i];
    }
    [ka, kb] = [kb, ka];
    [ia, ib] = [ib, ia];
  }
  return ia.subarray(0, V);
}
