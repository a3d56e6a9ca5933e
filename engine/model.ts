/**
 * The Llama / Qwen2 decoder, top to bottom:
 *
 *   x = embed_tokens[ids]
 *   for each layer:  x = x + attn(rmsnorm(x))      (RoPE, grouped-query attention, optional QKV bias)
 *                    x = x + mlp(rmsnorm(x))       (SwiGLU: down(silu(gate(x)) * up(x)))
 *   logits = lm_head(rmsnorm(x))                   (lm_head tied to embed_tokens or its own)
 *
 * Weights carry their Hugging Face names (model.layers.0.self_attn.q_proj.weight, ...).
 * Linear weights are held as [in, out] so that x @ W is a plain 2-D matMul (the fast path
 * on wasm); the files hold PyTorch's [out, in] and `getWeights` / `setWeights` transpose.
 * Hidden states stay 2-D, [B*T, C], except inside attention.
 */
import * as tf from './tf.ts';
import { Rng } from '../common/rng.ts';
import { weightShapes, type ModelConfig } from './config.ts';
import { embedding, linear, linearTransposed, matMulConst, rmsNorm, rotateHalfMatrices, swiGlu, transposeFlagsFree } from './ops.ts';
import { inverseFrequencies, ropeTables } from './rope.ts';
import { batchMatMul, batchMatMulPrefix, MASKED_SCORE, paddingSkipActive } from './attention-kernel.ts';
import { inPlaceWrites, linearNoGrad, rmsNormNoGrad, ropeNoGrad, swiGluNoGrad, writeAlong } from './wasm-kernels.ts';

/**
 * Keys and values of every layer for the tokens seen so far; `forward` appends to it. On the wasm
 * backend the tensors have room to grow (capacity >= S): a step writes its token's keys and
 * values in place and attention reads the first S positions (`batchMatMulPrefix`), so appending
 * costs the new token, not a copy of the whole cache; the room grows by half when it runs out.
 * Elsewhere they hold exactly S positions and a step concatenates.
 */
export interface KVCache {
  /** Per layer: keys transposed [B*kvHeads, headDim, capacity] and values [B*kvHeads, capacity, headDim]; the first S positions are valid. */
  layers: { kT: tf.Tensor3D; v: tf.Tensor3D }[];
  /** Tokens held (S). */
  length: number;
}

export function createCache(): KVCache {
  return { layers: [], length: 0 };
}

export function disposeCache(cache: KVCache): void {
  for (const l of cache.layers) { l.kT.dispose(); l.v.dispose(); }
  cache.layers = [];
  cache.length = 0;
}

/**
 * Rows of token ids left-padded with `pad` to the longest, and the attention mask that hides the
 * padding (1 for a real token): what `forward` takes for a ragged batch.
 */
export function leftPadRows(rows: number[][], pad: number): { ids: number[][]; mask: number[][] } {
  const L = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...new Array<number>(L - r.length).fill(pad), ...r]),
    mask: rows.map((r) => [...new Array<number>(L - r.length).fill(0), ...new Array<number>(r.length).fill(1)]),
  };
}

export interface ForwardOptions {
  /** Appended to in place: the new tokens' keys and values are added. */
  cache?: KVCache;
  /** [B, past + T], 1 for real tokens, 0 for padding (e.g. left padding of ragged prompts). */
  attentionMask?: tf.Tensor2D | number[][];
  /** [B, T] position of each new token; by default counted from the attention mask, else past + t. */
  positions?: tf.Tensor2D | number[][];
  /** Only compute logits for the last position: [B, 1, V]. */
  lastOnly?: boolean;
}

/** Whether the weight is a linear layer's (held transposed relative to the Hugging Face files). */
export function isLinearWeight(name: string): boolean {
  return name.endsWith('_proj.weight') || name === 'lm_head.weight';
}

const NEG = MASKED_SCORE;
let modelCount = 0;

export class CausalLM {
  readonly config: ModelConfig;
  /** Every weight by its Hugging Face name (linear weights as [in, out]). */
  readonly params = new Map<string, tf.Variable>();
  private readonly invFreq: Float32Array;
  private readonly rot: { R: tf.Tensor2D; RT: tf.Tensor2D };
  private headT?: { dataId: object; t: tf.Tensor2D };
  /**
   * Query positions per attention block (see `attention`): smaller blocks skip more of the masked
   * upper triangle but add slices and calls; 32 trained fastest on wasm at T = 64 and 128 (vs 16 and 64).
   * Unset: 32, except on the tensorflow backend (tfjs-node), where each kernel is a call into
   * TensorFlow's runtime that costs more than the masked arithmetic, so the sequence is one block.
   */
  attentionBlock?: number;

  constructor(config: ModelConfig) {
    this.config = config;
    modelCount += 1; // tfjs variable names are global: each model gets its own prefix
    for (const [name, shape] of weightShapes(config)) {
      const internal = isLinearWeight(name) ? [shape[1], shape[0]] : shape;
      const init = name.endsWith('norm.weight') ? tf.ones(internal) : tf.zeros(internal);
      this.params.set(name, tf.variable(init, true, `model${modelCount}/${name}`));
      init.dispose();
    }
    this.invFreq = inverseFrequencies(config);
    this.rot = rotateHalfMatrices(config.head_dim);
  }

  /** Random weights like the reference initialisation: N(0, initializer_range), zero biases, unit norms. */
  initRandom(seed: number): this {
    const std = this.config.initializer_range;
    for (const [name, v] of this.params) {
      if (name.endsWith('norm.weight') || name.endsWith('.bias')) continue;
      const rng = new Rng(seed).fork(name);
      const data = new Float32Array(v.size);
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
    return this;
  }

  numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** One weight in the files' layout ([out, in] for linear layers), as a copy. */
  getWeight(name: string): { shape: number[]; data: Float32Array } {
    const v = this.w(name);
    const t: tf.Tensor = isLinearWeight(name) ? tf.transpose(v) : v;
    // A copy: on some backends dataSync hands out the tensor's own storage.
    const out = { shape: t.shape, data: (t.dataSync() as Float32Array).slice() };
    if (t !== v) t.dispose();
    return out;
  }

  /** Every weight by Hugging Face name, in the files' layout. */
  getWeights(): Map<string, { shape: number[]; data: Float32Array }> {
    return new Map([...this.params.keys()].map((name) => [name, this.getWeight(name)]));
  }

  /** Weight shapes in the files' layout, by Hugging Face name. */
  weightShapes(): Map<string, number[]> {
    return new Map([...this.params].map(([name, v]) => [name, isLinearWeight(name) ? [v.shape[1], v.shape[0]] as number[] : v.shape]));
  }

  /** Sets weights given in the files' layout; every name must be a weight of this model with its shape. */
  setWeights(weights: Map<string, { shape: number[]; data: Float32Array }>): void {
    for (const [name, w] of weights) {
      const v = this.params.get(name);
      if (!v) throw new Error(`setWeights: "${name}" is not a weight of this model`);
      const want = isLinearWeight(name) ? [v.shape[1], v.shape[0]] : v.shape;
      if (w.shape.join(',') !== want.join(',')) throw new Error(`setWeights: "${name}" has shape [${w.shape}], expected [${want}]`);
      tf.tidy(() => {
        const t = tf.tensor(w.data, w.shape);
        v.assign(isLinearWeight(name) ? tf.transpose(t) : t);
      });
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.rot.R.dispose();
    this.rot.RT.dispose();
    this.headT?.t.dispose();
  }

  private w(name: string): tf.Tensor {
    const v = this.params.get(name);
    if (!v) throw new Error(`missing weight ${name}`);
    return v;
  }

  /** A linear layer by name prefix: x @ W (+ b), added to `residual` when given. */
  private proj(x: tf.Tensor2D, prefix: string, residual?: tf.Tensor2D): tf.Tensor2D {
    const w = this.w(prefix + '.weight') as tf.Tensor2D;
    const b = this.params.get(prefix + '.bias');
    // Where no gradient is taken, one kernel where there is one (the same values).
    const fused = linearNoGrad(x, w, b, residual);
    if (fused) return fused;
    const y = linear(x, w);
    const yb = b ? (tf.add(y, b) as tf.Tensor2D) : y;
    return residual ? (tf.add(residual, yb) as tf.Tensor2D) : yb;
  }

  private rmsNorm(x: tf.Tensor2D, name: string): tf.Tensor2D {
    const w = this.w(name) as tf.Tensor1D, eps = this.config.rms_norm_eps;
    // Where no gradient is taken, one kernel where there is one (the same values).
    return rmsNormNoGrad(x, w, eps) ?? rmsNorm(x, w, eps);
  }

  /**
   * Rotates x [N, heads*d] by its positions' angles, x*cos + rotate_half(x)*sin, laid out as
   * `shape` (B, T, the heads' axes, d) for the transposes that follow; `table` holds cos and sin in
   * a shape that broadcasts against it.
   */
  private rope(x: tf.Tensor2D, shape: number[], table: RopeTable): tf.Tensor {
    // Where no gradient is taken, one kernel where there is one (the same values).
    const fused = ropeNoGrad(x, table.cos, table.sin, shape);
    if (fused) return fused;
    const d = this.config.head_dim;
    const rotated = tf.reshape(matMulConst(tf.reshape(x, [-1, d]) as tf.Tensor2D, this.rot.R, this.rot.RT), shape);
    return tf.add(tf.mul(tf.reshape(x, shape), table.cos), tf.mul(rotated, table.sin));
  }

  /** The attention block on the normed x, added to `residual`. */
  private attention(i: number, x: tf.Tensor2D, ctx: BlockContext, residual: tf.Tensor2D): tf.Tensor2D {
    const { B, T, cache } = ctx;
    const c = this.config, d = c.head_dim, H = c.num_attention_heads, Hkv = c.num_key_value_heads;
    const rep = H / Hkv, N = B * T, p = `model.layers.${i}.self_attn.`;

    // Queries come out of RoPE already scaled by 1/sqrt(d) (its tables carry the factor), keys unscaled.
    const q = this.rope(this.proj(x, p + 'q_proj'), [B, T, Hkv, rep, d], ctx.queryRope);
    const k = this.rope(this.proj(x, p + 'k_proj'), [B, T, Hkv, d], ctx.keyRope);
    const v = this.proj(x, p + 'v_proj');

    // Query heads sharing a key/value head are stacked along the query axis, position-major:
    // [B*Hkv, T*rep, d], row t*rep + r. Keys transposed [B*Hkv, d, T], values [B*Hkv, T, d].
    const G = B * Hkv;
    const qh = permuted(q, q.shape, [0, 2, 1, 3, 4], [G, T * rep, d]) as tf.Tensor3D;
    let kT = permuted(k, k.shape, [0, 2, 3, 1], [G, d, T]) as tf.Tensor3D;
    let vh = permuted(v, [B, T, Hkv, d], [0, 2, 1, 3], [G, T, d]) as tf.Tensor3D;
    const past = cache?.length ?? 0, S = past + T;
    if (cache) {
      const layer = appendToCache(cache.layers[i], kT, vh, past);
      cache.layers[i] = layer;
      kT = layer.kT;
      vh = layer.v;
    }

    // Queries go in blocks of positions; a block's queries only see keys up to its last
    // position, so the fully masked upper triangle is never computed.
    const outs = ctx.blocks.map(({ t0, t1, mask }) => {
      const rows = (t1 - t0) * rep, keys = S - T + t1;
      const qb = rows === T * rep ? qh : tf.slice(qh, [0, t0 * rep, 0], [G, rows, d]);
      // The first `keys` positions: read in place from a cache (which may have room beyond S),
      // sliced out otherwise (training differentiates through the slices).
      const kb = cache || keys === S ? kT : tf.slice(kT, [0, 0, 0], [G, d, keys]);
      const vb = cache || keys === S ? vh : tf.slice(vh, [0, 0, 0], [G, keys, d]);
      const skip = ctx.keySkip;
      let scores: tf.Tensor = cache ? batchMatMulPrefix(qb, kb, keys, skip && { on: 'n', at: skip }) : batchMatMul(qb, kb);
      // A bias shared by the whole batch ([1, rows, keys]) adds to the scores as they are.
      if (mask && mask.rank === 3) scores = tf.add(scores, mask);
      else if (mask) scores = tf.reshape(tf.add(tf.reshape(scores, [B, Hkv, rows, keys]), mask), [G, rows, keys]);
      const probs = tf.softmax(scores) as tf.Tensor3D;
      return cache ? batchMatMulPrefix(probs, vb, d, skip && { on: 'k', at: skip }) : batchMatMul(probs, vb);
    });
    const heads = outs.length === 1 ? outs[0] : tf.concat(outs, 1);
    return this.proj(permuted(heads, [B, Hkv, T, rep, d], [0, 2, 1, 3, 4], [N, H * d]) as tf.Tensor2D, p + 'o_proj', residual);
  }

  /** The MLP block on the normed x, added to `residual`. */
  private mlp(i: number, x: tf.Tensor2D, residual: tf.Tensor2D): tf.Tensor2D {
    const p = `model.layers.${i}.mlp.`;
    const gate = this.proj(x, p + 'gate_proj');
    const up = this.proj(x, p + 'up_proj');
    return this.proj(swiGluNoGrad(gate, up) ?? swiGlu(gate, up), p + 'down_proj', residual);
  }

  /** The output projection [C, V]: lm_head, or the embedding transposed when tied. */
  private head(inference: boolean): tf.Tensor2D {
    if (!this.config.tie_word_embeddings) return this.w('lm_head.weight') as tf.Tensor2D;
    const E = this.w('model.embed_tokens.weight');
    if (!inference) return tf.transpose(E) as tf.Tensor2D; // (tensorflow backend: see `logits`)
    // Generation reuses the transpose until the embedding is reassigned (new dataId).
    if (!this.headT || this.headT.dataId !== E.dataId) {
      this.headT?.t.dispose();
      this.headT = { dataId: E.dataId, t: tf.keep(tf.transpose(E) as tf.Tensor2D) };
    }
    return this.headT.t;
  }

  /**
   * The output head on final hidden states [N, C]: [N, V]. On the tensorflow backend a tied head
   * in training multiplies by the embedding with a transpose flag (no transpose kernels).
   */
  private logits(h: tf.Tensor2D, inference: boolean): tf.Tensor2D {
    if (this.config.tie_word_embeddings && !inference && transposeFlagsFree()) {
      return linearTransposed(h, this.w('model.embed_tokens.weight') as tf.Tensor2D);
    }
    return linear(h, this.head(inference));
  }

  /** Logits [B, T, V] (or [B, 1, V] with lastOnly) for int32 token ids [B, T]. */
  forward(inputIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return this.run(inputIds, opts, true);
  }

  /**
   * The final hidden states, after the last RMSNorm: [B, T, C] (or [B, 1, C] with lastOnly), what
   * the output head reads (transformers' last_hidden_state). A sequence classifier puts its own
   * head on them (engine/classifier.ts).
   */
  hiddenStates(inputIds: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return this.run(inputIds, opts, false);
  }

  private run(inputIds: tf.Tensor2D, opts: ForwardOptions, withHead: boolean): tf.Tensor3D {
    const c = this.config;
    const [B, T] = inputIds.shape;
    const cache = opts.cache;
    const past = cache?.length ?? 0;
    const S = past + T;
    const keyMask = opts.attentionMask ? toInt32(opts.attentionMask, [B, S], 'attentionMask') : undefined;
    const positions = opts.positions
      ? toInt32(opts.positions, [B, T], 'positions')
      : defaultPositions(B, T, past, keyMask);
    const { cos, sin } = ropeTables(positions, this.invFreq);
    const rep = c.num_attention_heads / c.num_key_value_heads;
    // Decoding one token a row from the cache: attention skips each row's leading padding, and on
    // wasm writes those scores masked, so when that is all the mask masks there is no bias to add.
    const leading = cache && T === 1 && keyMask ? leadingPadding(keyMask, B, S, c.num_key_value_heads) : undefined;
    const skipMasks = leading !== undefined && leading.onlyLeading && paddingSkipActive();
    // A mask without padding masks nothing but the future: no bias at all for one new token, one
    // shared by the batch for several (adding zeros changes no score).
    const maskData = skipMasks ? undefined : attentionBias(B, T, past, rep, keyMask?.includes(0) ? keyMask : undefined);
    const d = c.head_dim, scale = 1 / Math.sqrt(d);
    const qcos = new Float32Array(cos.length), qsin = new Float32Array(sin.length);
    for (let j = 0; j < cos.length; j++) { qcos[j] = cos[j] * scale; qsin[j] = sin[j] * scale; }

    const logits = tf.tidy(() => {
      const ids = inputIds.dtype === 'int32' ? inputIds : tf.cast(inputIds, 'int32');
      const ctx: BlockContext = {
        B, T, cache,
        queryRope: { cos: tf.tensor(qcos, [B, T, 1, 1, d]), sin: tf.tensor(qsin, [B, T, 1, 1, d]) },
        keyRope: { cos: tf.tensor(cos, [B, T, 1, d]), sin: tf.tensor(sin, [B, T, 1, d]) },
        blocks: [],
        keySkip: leading?.skip,
      };
      // The bias as [1, T*rep, S] when the whole batch shares it (no padding), else [B, 1, T*rep, S].
      const shared = maskData?.batch === 1;
      const mask = maskData ? tf.tensor(maskData.data, shared ? [1, T * rep, S] : [maskData.batch, 1, T * rep, S]) : undefined;
      const block = this.attentionBlock ?? (tf.getBackend() === 'tensorflow' ? T : 32);
      for (let t0 = 0; t0 < T; t0 += block) {
        const t1 = Math.min(T, t0 + block);
        const whole = t0 === 0 && t1 === T;
        ctx.blocks.push({
          t0, t1,
          mask: !mask || whole ? mask
            : shared ? tf.slice(mask, [0, t0 * rep, 0], [1, (t1 - t0) * rep, past + t1])
            : tf.slice(mask, [0, 0, t0 * rep, 0], [maskData!.batch, 1, (t1 - t0) * rep, past + t1]),
        });
      }
      let x = embedding(this.w('model.embed_tokens.weight') as tf.Tensor2D, ids);
      for (let i = 0; i < c.num_hidden_layers; i++) {
        x = this.attention(i, this.rmsNorm(x, `model.layers.${i}.input_layernorm.weight`), ctx, x);
        x = this.mlp(i, this.rmsNorm(x, `model.layers.${i}.post_attention_layernorm.weight`), x);
      }
      let h = this.rmsNorm(x, 'model.norm.weight');
      let Tout = T;
      if (opts.lastOnly && T > 1) {
        const last = tf.slice(tf.reshape(h, [B, T, c.hidden_size]), [0, T - 1, 0], [B, 1, c.hidden_size]);
        h = tf.reshape(last, [B, c.hidden_size]);
        Tout = 1;
      }
      if (!withHead) return tf.reshape(h, [B, Tout, c.hidden_size]) as tf.Tensor3D;
      return tf.reshape(this.logits(h, cache !== undefined), [B, Tout, c.vocab_size]) as tf.Tensor3D;
    });
    if (cache) cache.length = S;
    return logits;
  }
}

/**
 * x viewed as `view`, its axes permuted by `perm`, reshaped to `shape`. Where the permutation moves
 * only axes of size 1 (decoding one token a row: the position axis) the data keep their order, so
 * this is one reshape, no transpose kernel.
 */
function permuted(x: tf.Tensor, view: number[], perm: number[], shape: number[]): tf.Tensor {
  const as = (t: tf.Tensor, s: number[]) => (tf.util.arraysEqual(t.shape, s) ? t : tf.reshape(t, s));
  const moved = perm.filter((a) => view[a] !== 1);
  if (moved.every((a, i) => i === 0 || a > moved[i - 1])) return as(x, shape);
  return as(tf.transpose(as(x, view), perm), shape);
}

interface RopeTable {
  cos: tf.Tensor;
  sin: tf.Tensor;
}

interface BlockContext {
  B: number;
  T: number;
  /** RoPE tables for the queries ([B, T, 1, 1, d], times 1/sqrt(d)) and the keys ([B, T, 1, d]). */
  queryRope: RopeTable;
  keyRope: RopeTable;
  /** Query position blocks [t0, t1) with their slice of the attention bias. */
  blocks: { t0: number; t1: number; mask?: tf.Tensor }[];
  cache?: KVCache;
  /**
   * Decoding one token a row from the cache: per attention matrix (batch row b, key/value head h at
   * b * Hkv + h), the leading cache positions that are padding for that row, which attention need not
   * read (`batchMatMulPrefix`'s skip). Absent otherwise.
   */
  keySkip?: number[];
}

/**
 * The cache layer after appending T new positions (keys [G, d, T], values [G, T, d]) to the
 * `past` valid ones of `old` (absent for the first pass). In place where the backend allows it and
 * there is room, else into new tensors (with room to spare where in-place writes work).
 * The returned tensors are kept; the ones they replace are disposed.
 */
function appendToCache(old: { kT: tf.Tensor3D; v: tf.Tensor3D } | undefined, kT: tf.Tensor3D, vh: tf.Tensor3D, past: number): { kT: tf.Tensor3D; v: tf.Tensor3D } {
  const [G, d, T] = kT.shape, S = past + T;
  if (!inPlaceWrites()) {
    // Exactly S positions: drop any room an in-place cache left, then concatenate.
    if (!old) return { kT: tf.keep(kT), v: tf.keep(vh) };
    const pk = old.kT.shape[2] === past ? old.kT : tf.slice(old.kT, [0, 0, 0], [G, d, past]);
    const pv = old.v.shape[1] === past ? old.v : tf.slice(old.v, [0, 0, 0], [G, past, d]);
    const layer = { kT: tf.keep(tf.concat([pk, kT], 2)), v: tf.keep(tf.concat([pv, vh], 1)) };
    old.kT.dispose();
    old.v.dispose();
    return layer;
  }
  if (old && old.kT.shape[2] >= S) {
    writeAlong(old.kT, kT, 2, T, past);
    writeAlong(old.v, vh, 1, T, past);
    return old;
  }
  // New room: what is needed and half as much again (at least 16 positions), the valid part copied
  // over (Fill writes the heap directly; zeros would build the array in JavaScript first).
  const capacity = S + Math.max(16, S >> 1);
  const layer = { kT: tf.keep(tf.fill([G, d, capacity], 0)) as tf.Tensor3D, v: tf.keep(tf.fill([G, capacity, d], 0)) as tf.Tensor3D };
  if (old) {
    writeAlong(layer.kT, old.kT, 2, past, 0);
    writeAlong(layer.v, old.v, 1, past, 0);
    old.kT.dispose();
    old.v.dispose();
  }
  writeAlong(layer.kT, kT, 2, T, past);
  writeAlong(layer.v, vh, 1, T, past);
  return layer;
}

function toInt32(value: tf.Tensor2D | number[][], shape: [number, number], what: string): Int32Array {
  const got = Array.isArray(value) ? [value.length, value[0]?.length ?? 0] : value.shape;
  if (got[0] !== shape[0] || got[1] !== shape[1]) {
    throw new Error(`forward: ${what} has shape [${got}], expected [${shape}]`);
  }
  if (!Array.isArray(value)) return Int32Array.from(value.dataSync());
  // Row by row: generation passes a growing [B, S] mask every step, and flat() of it showed in profiles.
  const out = new Int32Array(shape[0] * shape[1]);
  for (let b = 0; b < shape[0]; b++) {
    const row = value[b];
    if (row.length !== shape[1]) throw new Error(`forward: ${what} row ${b} has ${row.length} entries, expected ${shape[1]}`);
    const base = b * shape[1];
    for (let s = 0; s < shape[1]; s++) out[base + s] = row[s];
  }
  return out;
}

/** Positions of the T new tokens: real tokens before each one (left padding is not counted); past + t without a mask. */
function defaultPositions(B: number, T: number, past: number, keyMask?: Int32Array): Int32Array {
  const pos = new Int32Array(B * T);
  const S = past + T;
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let s = 0; s < S; s++) {
      const real = keyMask ? keyMask[b * S + s] !== 0 : true;
      if (real) count++;
      if (s >= past) pos[b * T + s - past] = real ? count - 1 : 0;
    }
  }
  return pos;
}

/**
 * Per attention matrix (row b's `Hkv` heads in turn), how many of row b's first keys are padding
 * (keyMask [B, S], 0 for padding): the columns before its first real key. A row with no real key
 * gets 0. `onlyLeading`: every row is padding then real keys, with one real key at least, so
 * skipping those columns is all the mask does.
 */
function leadingPadding(keyMask: Int32Array, B: number, S: number, Hkv: number): { skip: number[]; onlyLeading: boolean } {
  const skip = new Array<number>(B * Hkv);
  let onlyLeading = true;
  for (let b = 0; b < B; b++) {
    const base = b * S;
    let s = 0;
    while (s < S && keyMask[base + s] === 0) s++;
    skip.fill(s === S ? 0 : s, b * Hkv, (b + 1) * Hkv);
    if (s === S) onlyLeading = false;
    for (let t = s; onlyLeading && t < S; t++) if (keyMask[base + t] === 0) onlyLeading = false;
  }
  return { skip, onlyLeading };
}

/**
 * Additive attention bias [Bm, 1, T*rep, S] (row t*rep + r; 0 allowed, -1e9 masked): causal, and masking padded keys.
 * Undefined when nothing is masked (a single new token without padding).
 */
function attentionBias(B: number, T: number, past: number, rep: number, keyMask?: Int32Array): { data: Float32Array; batch: number } | undefined {
  const S = past + T;
  if (!keyMask && T === 1) return undefined;
  const Bm = keyMask ? B : 1;
  const data = new Float32Array(Bm * rep * T * S);
  for (let b = 0; b < Bm; b++) {
    for (let t = 0; t < T; t++) {
      const row = new Float32Array(S);
      for (let s = 0; s < S; s++) {
        const causal = s <= past + t;
        const real = keyMask ? keyMask[b * S + s] !== 0 : true;
        row[s] = causal && real ? 0 : NEG;
      }
      for (let r = 0; r < rep; r++) data.set(row, ((b * T + t) * rep + r) * S);
    }
  }
  return { data, batch: Bm };
}
