/**
 * A decoder session: sequences decoded together, one token each per step, on one shared
 * left-padded KV cache. The one generation path of the engine: `generate()` runs a fixed batch
 * through it, and the server's continuous batching (evaluation/engine-backend.ts, driven by
 * evaluation/scheduler.ts) lets sequences join and leave between steps.
 *
 * - `add` prefills newcomers on their own (left-padded, masked); the next `step` merges them into
 *   the running batch, the shorter cache left-padded with columns nothing attends to.
 * - `step` feeds every running row the token it sampled last, then samples one token per row
 *   (the fused sampler: token and its log-probability under the model from one pass).
 * - `remove` gathers rows out of the cache and drops the columns that are padding for every row left.
 * - `retire` keeps a row in place on padding that nothing attends to, so the batch keeps its shape
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
  /** The token sampled last and not yet fed to the model. */
  pending?: number;
  topLogprobs: number;
  /** Samples nothing more; fed padding once its last token is in. */
  retired: boolean;
}

interface Group {
  rows: Row[];
  /** Absent without the cache. */
  cache?: KVCache;
}

/** Left-pads a cache along the sequence axis to `S` columns. */
function padCache(cache: KVCache, S: number): void {
  const extra = S - cache.length;
  if (extra <= 0) return;
  cache.layers = cache.layers.map(({ kT, v }) => {
    const out = { kT: tf.pad(kT, [[0, 0], [0, 0], [extra, 0]]) as tf.Tensor3D, v: tf.pad(v, [[0, 0], [extra, 0], [0, 0]]) as tf.Tensor3D };
    kT.dispose();
    v.dispose();
    return out;
  });
  cache.length = S;
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
    return (this.running?.rows.length ?? 0) + this.joining.reduce((n, g) => n + g.rows.length, 0);
  }

  /** Prefills sequences as one group; they get their first token from the next `step()`. */
  add(seqs: SessionSequence[]): void {
    if (seqs.length === 0) return;
    const V = this.model.config.vocab_size;
    for (const s of seqs) {
      if (s.promptIds.length === 0) throw new Error('a prompt needs at least one token');
      const bad = s.promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
      if (bad !== undefined) throw new Error(`token id ${bad} is outside the vocabulary [0, ${V})`);
    }
    const { ids, mask } = leftPadRows(seqs.map((s) => s.promptIds), this.pad);
    const cache = this.useCache ? createCache() : undefined;
    let data: Float32Array;
    try {
      data = this.forwardLast(ids, mask, cache);
    } catch (err) {
      if (cache) disposeCache(cache);
      throw err;
    }
    this.joining.push({
      cache,
      rows: seqs.map((s, b) => ({
        id: s.id, sampling: s.sampling, rng: new Rng(s.seed), mask: mask[b], ids: this.useCache ? undefined : ids[b],
        len: s.promptIds.length, logits: data.subarray(b * V, (b + 1) * V), topLogprobs: s.topLogprobs ?? 0, retired: false,
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
        // A retired row feeds its last token, then padding that nothing attends to.
        const real = r.pending !== undefined;
        r.mask.push(real ? 1 : 0);
        r.ids?.push(real ? r.pending! : this.pad);
      }
      const data = this.useCache
        ? this.forwardLast(g.rows.map((r) => [r.pending ?? this.pad]), g.rows.map((r) => r.mask), g.cache, g.rows.map((r) => [r.len]))
        : this.forwardLast(g.rows.map((r) => r.ids!), g.rows.map((r) => r.mask));
      g.rows.forEach((r, b) => {
        r.len++;
        r.pending = undefined;
        r.logits = data.subarray(b * V, (b + 1) * V);
      });
    }
    for (const j of this.joining.splice(0)) this.merge(j);
    const out: SessionToken[] = [];
    for (const r of this.running?.rows ?? []) {
      if (r.retired) continue;
      const { token, logprob } = sampleWithLogProb(r.logits, r.sampling, r.rng);
      r.pending = token;
      const t: SessionToken = { id: r.id, token, logprob };
      if (r.topLogprobs > 0) t.top = topLogprobs(r.logits, r.topLogprobs);
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

  /** Drops sequences (finished or cancelled); their part of the cache is freed. */
  remove(ids: number[]): void {
    const gone = new Set(ids);
    for (const g of this.joining) this.keepRows(g, g.rows.filter((r) => !gone.has(r.id)));
    this.joining = this.joining.filter((g) => g.rows.length > 0);
    if (this.running) {
      this.keepRows(this.running, this.running.rows.filter((r) => !gone.has(r.id)));
      if (this.running.rows.length === 0) this.running = null;
    }
  }

  /** Frees everything. */
  dispose(): void {
    if (this.running?.cache) disposeCache(this.running.cache);
    for (const j of this.joining) if (j.cache) disposeCache(j.cache);
    this.running = null;
    this.joining = [];
  }

  /** Next-token logits [B * V] of a forward pass over `ids` (appended to `cache` when given). */
  private forwardLast(ids: number[][], mask: number[][], cache?: KVCache, positions?: number[][]): Float32Array {
    const input = tf.tensor2d(ids, [ids.length, ids[0].length], 'int32');
    try {
      const logits = this.model.forward(input, { cache, attentionMask: mask, positions, lastOnly: true });
      const data = logits.dataSync() as Float32Array;
      logits.dispose();
      return data;
    } finally {
      input.dispose();
    }
  }

  private merge(j: Group): void {
    const r = this.running;
    if (!r) {
      this.running = j;
      return;
    }
    const S = Math.max(r.rows[0].mask.length, j.rows[0].mask.length);
    for (const g of [r, j]) {
      const extra = S - g.rows[0].mask.length;
      if (g.cache) padCache(g.cache, S);
      for (const row of g.rows) {
        row.mask = [...new Array<number>(extra).fill(0), ...row.mask];
        if (row.ids) row.ids = [...new Array<number>(extra).fill(this.pad), ...row.ids];
      }
    }
    if (r.cache && j.cache) {
      const add = j.cache;
      r.cache.layers = r.cache.layers.map((l, i) => {
        const m = add.layers[i];
        const out = { kT: tf.concat([l.kT, m.kT], 0) as tf.Tensor3D, v: tf.concat([l.v, m.v], 0) as tf.Tensor3D };
        l.kT.dispose();
        l.v.dispose();
        return out;
      });
      disposeCache(add);
    }
    r.rows.push(...j.rows);
  }

  /** Keeps only `keep` (a subset, in order) of a group's rows, and drops columns that are padding for all of them. */
  private keepRows(g: Group, keep: Row[]): void {
    if (keep.length === g.rows.length) return;
    if (keep.length === 0) {
      if (g.cache) disposeCache(g.cache);
      g.rows = [];
      return;
    }
    let drop = Math.min(...keep.map((r) => r.mask.indexOf(1)));
    if (drop < 0) drop = 0;
    const S = g.rows[0].mask.length;
    const cache = g.cache;
    if (cache) {
      const Hkv = this.model.config.num_key_value_heads;
      const index = new Map(g.rows.map((r, b) => [r, b]));
      const sel = tf.tensor1d(keep.flatMap((r) => Array.from({ length: Hkv }, (_, h) => index.get(r)! * Hkv + h)), 'int32');
      cache.layers = cache.layers.map(({ kT, v }) => {
        const out = tf.tidy(() => {
          let k2 = tf.gather(kT, sel, 0) as tf.Tensor3D;
          let v2 = tf.gather(v, sel, 0) as tf.Tensor3D;
          if (drop > 0) {
            k2 = tf.slice(k2, [0, 0, drop], [-1, -1, S - drop]);
            v2 = tf.slice(v2, [0, drop, 0], [-1, S - drop, -1]);
          }
          return { kT: k2, v: v2 };
        });
        kT.dispose();
        v.dispose();
        return out;
      });
      sel.dispose();
      cache.length = S - drop;
    }
    for (const r of keep) {
      r.mask = r.mask.slice(drop);
      if (r.ids) r.ids = r.ids.slice(drop);
    }
    g.rows = keep;
  }
}
