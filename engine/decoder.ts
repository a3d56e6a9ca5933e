/**
 * A decoder session: sequences decoded together, one token each per step, on one shared
 * left-padded KV cache. The one generation path of the engine: `generate()` runs a fixed batch
 * through it, and the server's continuous batching (evaluation/engine-backend.ts, driven by
 * evaluation/scheduler.ts) lets sequences join and leave between steps.
 *
 * - `add` prefills newcomers as a group (left-padded, masked), or as a few groups of similar prompt
 *   lengths when that saves padding; the next `step` merges them into the running batch, the
 *   shorter caches left-padded with columns nothing attends to.
 * - `step` feeds every running row the token it sampled last, then samples one token per row
 *   (the fused sampler: token and its log-probability under the model from one pass).
 * - `remove` marks rows gone; the next `step` that merges joining sequences, or finds more than a
 *   quarter of the running rows gone, re-forms the batch once, after its forward pass: the rows
 *   left and the groups joining are copied into one new cache (contiguous runs of rows sliced
 *   out, no gather), without the columns that are padding for every row. Until then a gone row is
 *   fed padding in place, as a retired one. So sequences that leave and others that join later
 *   (a server's clients sending their next request) cost one copy of the cache, not one each.
 * - `retire` keeps a row in place on padding whose outputs nobody reads, so the batch keeps its shape
 *   (what `generate()` does with a row that has finished).
 *
 * Positions count real tokens only, so each row decodes as it would alone; row i samples from
 * its own stream `new Rng(seed)`. Without the cache (`useCache: false`, to check it) every step
 * recomputes the whole sequences.
 */
import * as tf from './tf.ts';
import { Rng } from '../common/rng.ts';
import { createCache, disposeCache, leftPadRows, type CausalLM, type KVCache } from './model.ts';
import { sampleWithLogProb, topLogprobs, type SamplingOptions, type TokenLogprob } from './sampling.ts';
import { shiftedExp } from './wasm-kernels.ts';

export interface SessionSequence {
  /** Unique among the session's sequences, chosen by the caller. */
  id: number;
  promptIds: number[];
  sampling: SamplingOptions;
  /** Seed of this sequence's own random stream. */
  seed: number;
  /** How many of the most likely tokens to report at each step (0 or absent: none). */
  topLogprobs?: number;
}

export interface SessionToken {
  id: number;
  token: number;
  /** Log-probability of the token under the model (temperature 1, before top-k / top-p / min-p). */
  logprob: number;
  /** The `topLogprobs` most likely tokens, most likely first, when the sequence asked for them. */
  top?: TokenLogprob[];
}

export interface SessionOptions {
  /** Token fed on padding (never attended to). Default 0. */
  padTokenId?: number;
  /** Default true. */
  useCache?: boolean;
}

interface Row {
  id: number;
  sampling: SamplingOptions;
  rng: Rng;
  /** 1 for a real token, 0 for padding; one entry per cache column. */
  mask: number[];
  /** The token of each column: kept only without the cache, where every step feeds them all. */
  ids?: number[];
  /** Columns fed so far, padding excluded while the row was live: the position of the next token. */
  len: number;
  /** Next-token logits from the last forward pass. */
  logits: Float32Array;
  /** exp(logits - their max), float32, from the same pass (computed with it, on the backend). */
  exps: Float32Array;
  /** The token sampled last and not yet fed to the model. */
  pending?: number;
  topLogprobs: number;
  /** Samples nothing more; fed padding once its last token is in. */
  retired: boolean;
  /** Removed: fed padding until the next re-forming of the batch drops it. */
  gone?: boolean;
}

interface Group {
  rows: Row[];
  /** Absent without the cache. */
  cache?: KVCache;
}

/** Maximal runs of consecutive indices: [start, count] pairs. */
function runsOf(indices: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const i of indices) {
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === i) last[1]++;
    else out.push([i, 1]);
  }
  return out;
}

/** What one group gives the re-formed batch: rows `keep` (indices, in order), columns `drop` on, left-padded by `padLeft`. */
interface Part {
  group: Group;
  keep: number[];
  drop: number;
  padLeft: number;
}

/**
 * One layer tensor of the re-formed cache: the kept rows of each part (sliced out by contiguous
 * runs along the row axis, `Hkv` cache rows per sequence), cut and padded along `axis` (the
 * sequence axis: 2 for keys, 1 for values), joined by one concat along the row axis. A part kept
 * whole and unshifted is used as it is (with its room to grow when it is the only one).
 */
function reformTensor(tensors: tf.Tensor3D[], parts: Part[], Hkv: number, axis: 1 | 2): tf.Tensor3D {
  const pieces = parts.flatMap((p, i) => {
    const t = tensors[i];
    // Valid positions: a cache may have room beyond them (model.ts), which a lone part keeps.
    const S = p.group.cache!.length;
    const whole = p.keep.length * Hkv === t.shape[0] && p.drop === 0 && (t.shape[axis] === S || parts.length === 1);
    const slices = whole ? [t] : runsOf(p.keep).map(([start, n]) => {
      const begin: [number, number, number] = [start * Hkv, 0, 0];
      const size: [number, number, number] = [n * Hkv, -1, -1];
      begin[axis] = p.drop;
      size[axis] = S - p.drop;
      return tf.slice(t, begin, size);
    });
    if (p.padLeft === 0) return slices;
    const pad: [number, number][] = [[0, 0], [0, 0], [0, 0]];
    pad[axis] = [p.padLeft, 0];
    return slices.map((x) => tf.pad(x, pad));
  });
  return pieces.length === 1 ? pieces[0] : tf.concat(pieces, 0);
}

/**
 * The cost of one prefill pass beyond its rows, counted in rows (prompt positions) of the batch: a
 * pass's fixed cost (its kernels' set-up) against what a row costs. With it, splitting a batch by
 * prompt length pays when it saves more padded positions than this per extra pass.
 */
export const PREFILL_PASS_ROWS = 64;
let splitting = true;

/** Turns the grouping of prompts by length off (one prefill pass for all) or back on; for comparisons in tests and benchmarks. */
export function setPrefillSplitting(on: boolean): void {
  splitting = on;
}

/**
 * Prompts (indices into `lengths`) grouped for prefilling: sorted by length, cut where the padding
 * saved outweighs the extra passes (fewest of rows padded to each group's longest plus
 * PREFILL_PASS_ROWS a group, by dynamic programming over the sorted lengths). Equal lengths stay
 * one group; groups come shortest first, each in the order the prompts were given.
 */
export function prefillGroups(lengths: number[]): number[][] {
  const n = lengths.length;
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b] || a - b);
  if (n <= 1 || lengths[order[0]] === lengths[order[n - 1]]) return [lengths.map((_, i) => i)];
  // best[j]: the least cost of the first j sorted prompts; cut[j]: where its last group starts.
  const best = new Array<number>(n + 1).fill(Infinity), cut = new Array<number>(n + 1).fill(0);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    const longest = lengths[order[j - 1]];
    for (let i = 0; i < j; i++) {
      const cost = best[i] + PREFILL_PASS_ROWS + (j - i) * longest;
      if (cost < best[j]) { best[j] = cost; cut[j] = i; }
    }
  }
  const groups: number[][] = [];
  for (let j = n; j > 0; j = cut[j]) groups.unshift(order.slice(cut[j], j).sort((a, b) => a - b));
  return groups;
}

/** See the file comment. Call `dispose()` when done: the cache holds tensors. */
export class DecoderSession {
  private running: Group | null = null;
  private joining: Group[] = [];
  private readonly pad: number;
  private readonly useCache: boolean;

  constructor(private readonly model: CausalLM, opts: SessionOptions = {}) {
    this.pad = opts.padTokenId ?? 0;
    this.useCache = opts.useCache ?? true;
  }

  /** Sequences in the session (running, retired or joining). */
  get size(): number {
    let n = 0;
    for (const g of this.groups()) for (const r of g.rows) if (!r.gone) n++;
    return n;
  }

  private groups(): Group[] {
    return this.running ? [this.running, ...this.joining] : this.joining;
  }

  /**
   * Prefills sequences; they get their first token from the next `step()`. Prompts of very
   * different lengths are prefilled in groups of similar length (`prefillGroups`), so that a short
   * prompt is not padded to the longest one through every layer; the groups merge at the next step.
   */
  add(seqs: SessionSequence[]): void {
    if (seqs.length === 0) return;
    const V = this.model.config.vocab_size;
    for (const s of seqs) {
      if (s.promptIds.length === 0) throw new Error('a prompt needs at least one token');
      const bad = s.promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
      if (bad !== undefined) throw new Error(`token id ${bad} is outside the vocabulary [0, ${V})`);
    }
    const groups = splitting ? prefillGroups(seqs.map((s) => s.promptIds.length)) : [seqs.map((_, i) => i)];
    const added = this.joining.length;
    try {
      for (const g of groups) this.prefill(g.map((i) => seqs[i]));
    } catch (err) {
      // All or nothing: the groups already prefilled by this call are dropped.
      for (const j of this.joining.splice(added)) if (j.cache) disposeCache(j.cache);
      throw err;
    }
  }

  /** Prefills sequences as one group, left-padded to the longest. */
  private prefill(seqs: SessionSequence[]): void {
    const V = this.model.config.vocab_size;
    const { ids, mask } = leftPadRows(seqs.map((s) => s.promptIds), this.pad);
    const cache = this.useCache ? createCache() : undefined;
    let data: Float32Array, exps: Float32Array;
    try {
      ({ logits: data, exps } = this.forwardLast(ids, mask, cache));
    } catch (err) {
      if (cache) disposeCache(cache);
      throw err;
    }
    this.joining.push({
      cache,
      rows: seqs.map((s, b) => ({
        id: s.id, sampling: s.sampling, rng: new Rng(s.seed), mask: mask[b], ids: this.useCache ? undefined : ids[b],
        len: s.promptIds.length, logits: data.subarray(b * V, (b + 1) * V), exps: exps.subarray(b * V, (b + 1) * V), topLogprobs: s.topLogprobs ?? 0, retired: false,
      })),
    });
  }

  /**
   * Feeds the running rows the tokens they sampled last, merges the sequences added since, and
   * samples one token for every row that is not retired (in the batch's row order).
   */
  step(): SessionToken[] {
    const V = this.model.config.vocab_size;
    const g = this.running;
    if (g && g.rows.length > 0) {
      for (const r of g.rows) {
        // A retired row feeds its last token, then padding; a removed row only padding. Their outputs
        // are never read, so the mask marks those columns as real keys all the same: every row's
        // padding then stays leading, which attention skips with no bias to add (engine/model.ts).
        if (r.gone) r.pending = undefined;
        const real = r.pending !== undefined;
        r.mask.push(1);
        r.ids?.push(real ? r.pending! : this.pad);
      }
      const { logits: data, exps } = this.useCache
        ? this.forwardLast(g.rows.map((r) => [r.pending ?? this.pad]), g.rows.map((r) => r.mask), g.cache, g.rows.map((r) => [r.len]))
        : this.forwardLast(g.rows.map((r) => r.ids!), g.rows.map((r) => r.mask));
      g.rows.forEach((r, b) => {
        r.len++;
        r.pending = undefined;
        r.logits = data.subarray(b * V, (b + 1) * V);
        r.exps = exps.subarray(b * V, (b + 1) * V);
      });
    }
    this.reform();
    const out: SessionToken[] = [];
    for (const r of this.running?.rows ?? []) {
      if (r.retired || r.gone) continue;
      const { token, logprob } = sampleWithLogProb(r.logits, r.sampling, r.rng, r.exps);
      r.pending = token;
      const t: SessionToken = { id: r.id, token, logprob };
      if (r.topLogprobs > 0) t.top = topLogprobs(r.logits, r.topLogprobs, r.exps);
      out.push(t);
    }
    return out;
  }

  /** Rows that sample nothing more but stay in the batch (their last token is still fed). */
  retire(ids: number[]): void {
    const done = new Set(ids);
    for (const g of [...this.joining, ...(this.running ? [this.running] : [])]) {
      for (const r of g.rows) if (done.has(r.id)) r.retired = true;
    }
  }

  /**
   * Drops sequences (finished or cancelled). They sample nothing more at once; their part of the
   * cache is dropped when the next `step` re-forms the batch (a group left with no sequence is
   * freed at once).
   */
  remove(ids: number[]): void {
    const gone = new Set(ids);
    for (const g of this.groups()) {
      for (const r of g.rows) if (gone.has(r.id)) r.gone = true;
      if (g.rows.every((r) => r.gone)) {
        if (g.cache) disposeCache(g.cache);
        g.rows = [];
      }
    }
    this.joining = this.joining.filter((g) => g.rows.length > 0);
    if (this.running && this.running.rows.length === 0) this.running = null;
  }

  /** Frees everything. */
  dispose(): void {
    if (this.running?.cache) disposeCache(this.running.cache);
    for (const j of this.joining) if (j.cache) disposeCache(j.cache);
    this.running = null;
    this.joining = [];
  }

  /**
   * Next-token logits [B * V] of a forward pass over `ids` (appended to `cache` when given), and
   * exp(logits - row max) beside them: the backend computes the exponentials of a whole batch at
   * once (`shiftedExp`, one kernel on wasm), element by element (so a row's do not depend on the
   * rows beside it), which the host would otherwise compute one Math.exp at a time for every row
   * it samples.
   */
  private forwardLast(ids: number[][], mask: number[][], cache?: KVCache, positions?: number[][]): { logits: Float32Array; exps: Float32Array } {
    const input = tf.tensor2d(ids, [ids.length, ids[0].length], 'int32');
    try {
      const logits = this.model.forward(input, { cache, attentionMask: mask, positions, lastOnly: true });
      const e = shiftedExp(logits);
      const data = logits.dataSync() as Float32Array;
      const exps = e.dataSync() as Float32Array;
      tf.dispose([logits, e]);
      return { logits: data, exps };
    } finally {
      input.dispose();
    }
  }

  /**
   * Re-forms the batch when sequences left or joined since the last step: one new group holding
   * the running rows that are left, then the joining ones, right-aligned on as many columns as the
   * longest of them needs (leading columns that are padding for every row are dropped).
   */
  private reform(): void {
    const groups = this.groups();
    if (groups.length === 0) return;
    // Alone, a running group keeps a few gone rows in place until others join (see the file comment).
    const alone = groups.length === 1 && groups[0] === this.running;
    if (groups.length === 1 && groups[0].rows.filter((r) => r.gone).length * 4 <= (alone ? groups[0].rows.length : 0)) {
      this.running = groups[0];
      this.joining = [];
      return;
    }
    // Columns each group holds, and the columns its kept rows need (from their first real token).
    let S = 0;
    const kept = groups.map((g) => {
      const keep: number[] = [];
      g.rows.forEach((r, b) => {
        if (r.gone) return;
        keep.push(b);
        const first = r.mask.indexOf(1);
        S = Math.max(S, r.mask.length - (first < 0 ? r.mask.length : first));
      });
      return { group: g, keep };
    }).filter((k) => k.keep.length > 0);
    const parts: Part[] = kept.map(({ group, keep }) => {
      const len = group.rows[0].mask.length;
      return { group, keep, drop: Math.max(0, len - S), padLeft: Math.max(0, S - len) };
    });
    const rows: Row[] = [];
    for (const p of parts) {
      for (const b of p.keep) {
        const row = p.group.rows[b];
        if (p.drop > 0 || p.padLeft > 0) {
          row.mask = [...new Array<number>(p.padLeft).fill(0), ...row.mask.slice(p.drop)];
          if (row.ids) row.ids = [...new Array<number>(p.padLeft).fill(this.pad), ...row.ids.slice(p.drop)];
        }
        rows.push(row);
      }
    }
    let cache: KVCache | undefined;
    if (this.useCache && parts.length > 0) {
      const Hkv = this.model.config.num_key_value_heads;
      const layers = parts[0].group.cache!.layers.map((_, i) => tf.tidy(() => ({
        kT: reformTensor(parts.map((p) => p.group.cache!.layers[i].kT), parts, Hkv, 2),
        v: reformTensor(parts.map((p) => p.group.cache!.layers[i].v), parts, Hkv, 1),
      })));
      cache = { layers, length: S };
      // Free the old caches, except tensors taken over whole.
      const reused = new Set<tf.Tensor>(layers.flatMap((l) => [l.kT, l.v]));
      for (const g of groups) {
        for (const l of g.cache?.layers ?? []) {
          if (!reused.has(l.kT)) l.kT.dispose();
          if (!reused.has(l.v)) l.v.dispose();
        }
      }
    } else {
      for (const g of groups) if (g.cache) disposeCache(g.cache);
    }
    this.running = rows.length > 0 ? { rows, cache } : null;
    if (!this.running && cache) disposeCache(cache);
    this.joining = [];
  }
}
