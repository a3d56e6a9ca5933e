/**
 * The built-in engine behind the server: a checkpoint folder (engine/checkpoint.ts) and
 * its tokenizer, decoded with continuous batching. The running batch shares one KV
 * cache; sequences joining are prefilled on their own and merged in (the shorter cache
 * left-padded, the padding masked out), sequences leaving are gathered out. Positions
 * count only real tokens, so each sequence decodes exactly as it would alone.
 */
import { basename, resolve } from 'node:path';
import * as tf from '../engine/tf.ts';
import { Rng } from '../common/rng.ts';
import { initBackend } from '../engine/backend.ts';
import { loadModel } from '../engine/checkpoint.ts';
import { createCache, disposeCache, type CausalLM, type KVCache } from '../engine/model.ts';
import { logProbOf, sampleToken } from '../engine/sampling.ts';
import { Tokenizer } from '../engine/tokenizer.ts';
import type { Backend, DecodeBatch, SamplingParams } from './backend.ts';
import type { SequenceStartTop, StepTokenTop, TopLogprob } from './scheduler.ts';

interface Row {
  id: number;
  sampling: SamplingParams;
  rng: Rng;
  /** 1 for a real token in the cache, 0 for padding; one entry per cache column. */
  mask: number[];
  /** Real tokens in the cache: the position of the next token fed. */
  len: number;
  /** Next-token logits from the last forward pass. */
  logits: Float32Array;
  /** The token sampled last and not yet fed to the model. */
  pending?: number;
  /** How many of the most likely tokens to report at each step. */
  topLogprobs: number;
}

/** The k most likely tokens of a logits row with their log-probabilities, most likely first (ties: lower id first). */
export function topLogprobs(logits: Float32Array, k: number): TopLogprob[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  // As logProbOf rounds it, so a token reads the same log-probability as the sampled one and as an alternative.
  const logSum = Math.log(sum);
  // A small sorted list of the best so far: k is at most 20.
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

interface Group {
  rows: Row[];
  cache: KVCache;
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

/** A decode batch on the engine model; see the file comment. */
export class EngineBatch implements DecodeBatch {
  private running: Group | null = null;
  private joining: Group[] = [];

  constructor(private readonly model: CausalLM, private readonly padId: number) {}

  async add(seqs: SequenceStartTop[]): Promise<void> {
    if (seqs.length === 0) return;
    const V = this.model.config.vocab_size;
    for (const s of seqs) {
      if (s.promptIds.length === 0) throw new Error('a prompt needs at least one token');
      const bad = s.promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
      if (bad !== undefined) throw new Error(`token id ${bad} is outside the vocabulary [0, ${V})`);
    }
    const L = Math.max(...seqs.map((s) => s.promptIds.length));
    const ids = seqs.map((s) => [...new Array<number>(L - s.promptIds.length).fill(this.padId), ...s.promptIds]);
    const mask = seqs.map((s) => [...new Array<number>(L - s.promptIds.length).fill(0), ...new Array<number>(s.promptIds.length).fill(1)]);
    const cache = createCache();
    const input = tf.tensor2d(ids, [seqs.length, L], 'int32');
    const logits = this.model.forward(input, { cache, attentionMask: mask, lastOnly: true });
    input.dispose();
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    this.joining.push({
      cache,
      rows: seqs.map((s, b) => ({
        id: s.id, sampling: s.sampling, rng: new Rng(s.sampling.seed), mask: mask[b], len: s.promptIds.length,
        logits: data.slice(b * V, (b + 1) * V), topLogprobs: s.topLogprobs ?? 0,
      })),
    });
  }

  remove(ids: number[]): void {
    const gone = new Set(ids);
    for (const g of this.joining) this.keepRows(g, g.rows.filter((r) => !gone.has(r.id)));
    this.joining = this.joining.filter((g) => g.rows.length > 0);
    if (this.running) {
      this.keepRows(this.running, this.running.rows.filter((r) => !gone.has(r.id)));
      if (this.running.rows.length === 0) this.running = null;
    }
  }

  async step(): Promise<StepTokenTop[]> {
    const V = this.model.config.vocab_size;
    // 1. Feed the running rows the tokens sampled last step.
    const g = this.running;
    if (g && g.rows.length > 0) {
      const input = tf.tensor2d(g.rows.map((r) => [r.pending!]), [g.rows.length, 1], 'int32');
      const logits = this.model.forward(input, {
        cache: g.cache,
        attentionMask: g.rows.map((r) => [...r.mask, 1]),
        positions: g.rows.map((r) => [r.len]),
        lastOnly: true,
      });
      input.dispose();
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      g.rows.forEach((r, b) => {
        r.mask.push(1);
        r.len++;
        r.pending = undefined;
        r.logits = data.slice(b * V, (b + 1) * V);
      });
    }
    // 2. Merge the prefilled newcomers into the running batch.
    for (const j of this.joining.splice(0)) this.merge(j);
    // 3. Sample one token per row.
    const rows = this.running?.rows ?? [];
    return rows.map((r) => {
      const { temperature, topP, topK, minP } = r.sampling;
      const token = sampleToken(r.logits, { temperature, topP, topK, minP }, r.rng);
      r.pending = token;
      const out: StepTokenTop = { id: r.id, token, logprob: logProbOf(r.logits, token) };
      if (r.topLogprobs > 0) out.top = topLogprobs(r.logits, r.topLogprobs);
      return out;
    });
  }

  /** Frees everything. */
  dispose(): void {
    if (this.running) disposeCache(this.running.cache);
    for (const j of this.joining) disposeCache(j.cache);
    this.running = null;
    this.joining = [];
  }

  private merge(j: Group): void {
    const r = this.running;
    if (!r) {
      this.running = j;
      return;
    }
    const S = Math.max(r.cache.length, j.cache.length);
    for (const g of [r, j]) {
      const extra = S - g.cache.length;
      padCache(g.cache, S);
      for (const row of g.rows) row.mask = [...new Array<number>(extra).fill(0), ...row.mask];
    }
    r.cache.layers = r.cache.layers.map((l, i) => {
      const m = j.cache.layers[i];
      const out = { kT: tf.concat([l.kT, m.kT], 0) as tf.Tensor3D, v: tf.concat([l.v, m.v], 0) as tf.Tensor3D };
      l.kT.dispose();
      l.v.dispose();
      return out;
    });
    disposeCache(j.cache);
    r.rows.push(...j.rows);
  }

  /** Keeps only `keep` (a subset, in order) of a group's rows, and drops columns that are padding for all of them. */
  private keepRows(g: Group, keep: Row[]): void {
    if (keep.length === g.rows.length) return;
    if (keep.length === 0) {
      disposeCache(g.cache);
      g.rows = [];
      return;
    }
    const Hkv = this.model.config.num_key_value_heads;
    const index = new Map(g.rows.map((r, b) => [r, b]));
    const sel = tf.tensor1d(keep.flatMap((r) => Array.from({ length: Hkv }, (_, h) => index.get(r)! * Hkv + h)), 'int32');
    let drop = Math.min(...keep.map((r) => r.mask.indexOf(1)));
    if (drop < 0) drop = 0;
    const S = g.cache.length;
    g.cache.layers = g.cache.layers.map(({ kT, v }) => {
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
    g.cache.length = S - drop;
    for (const r of keep) r.mask = r.mask.slice(drop);
    g.rows = keep;
  }
}

export interface EngineBackendOptions {
  /** Name the model is served under; default: `defaultServedName(dir)`. */
  name?: string;
}

/**
 * The name a checkpoint is served under by default: `RUN/STEP` for a folder a step wrote in the
 * artifact store (…/runs/RUN/steps/STEP/…, e.g. `huatuo-tiny-20260101-0200/sft`), so evaluations
 * of different checkpoints are told apart; otherwise the folder's name.
 */
export function defaultServedName(dir: string): string {
  const parts = resolve(dir).split(/[\\/]+/);
  for (let i = parts.length - 4; i >= 0; i--) {
    if (parts[i] === 'runs' && parts[i + 2] === 'steps' && parts[i + 1] && parts[i + 3]) return `${parts[i + 1]}/${parts[i + 3]}`;
  }
  return basename(resolve(dir));
}

/** Loads a checkpoint folder (config.json, model.safetensors, tokenizer files) as a server backend. */
export async function loadEngineBackend(dir: string, opts: EngineBackendOptions = {}): Promise<Backend & { model: CausalLM; tokenizer: Tokenizer; close(): void }> {
  await initBackend();
  const { model, config } = await loadModel(dir);
  const tokenizer = Tokenizer.load(dir);
  const eos = new Set(tokenizer.eosTokenIds);
  for (const id of [config.eos_token_id ?? []].flat()) eos.add(id);
  const padId = tokenizer.padTokenId ?? config.pad_token_id ?? 0;
  let current: EngineBatch | null = null;
  return {
    name: opts.name ?? defaultServedName(dir),
    path: resolve(dir),
    contextLength: config.max_position_embeddings,
    vocabSize: config.vocab_size,
    eosTokenIds: [...eos],
    model,
    tokenizer,
    encode: (text) => tokenizer.encode(text),
    decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
    encodeChat: (messages) =>
      tokenizer.encodeChat(messages),
    async promptLogprobs(promptIds, top) {
      const L = promptIds.length;
      if (L < 2) return [];
      const V = config.vocab_size;
      const input = tf.tensor2d([promptIds], [1, L], 'int32');
      const logits = model.forward(input);
      input.dispose();
      // Position t predicts token t + 1: the last position predicts nothing of the prompt.
      const rows = tf.tidy(() => tf.reshape(tf.slice(logits, [0, 0, 0], [1, L - 1, V]), [L - 1, V]));
      logits.dispose();
      const data = (await rows.data()) as Float32Array;
      rows.dispose();
      return promptIds.slice(1).map((token, t) => {
        const row = data.subarray(t * V, (t + 1) * V);
        return { logprob: logProbOf(row, token), top: top > 0 ? topLogprobs(row, top) : [] };
      });
    },
    newBatch() {
      current?.dispose();
      current = new EngineBatch(model, padId);
      return current;
    },
    close() {
      current?.dispose();
      current = null;
      model.dispose();
    },
  };
}
