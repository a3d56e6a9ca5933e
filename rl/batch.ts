/**
 * Update batches: prompt + response as one right-padded sequence, the response tokens
 * marked in the mask, and per-token numbers (log-probs of the old and the reference
 * policy, advantages, values) aligned with it: entry t belongs to token t.
 */
import type { Rng } from '../common/rng.ts';
import * as tf from '../engine/tf.ts';
import { maskedTokenLogProbs } from '../engine/loss.ts';
import type { CausalLM } from '../engine/model.ts';
import { padBatch } from '../train/sft-data.ts';

export interface Sequences {
  ids: number[][];
  /** 1 on response tokens. */
  mask: number[][];
  /** Index of each response's first token in its row. */
  start: number[];
}

export function buildSequences(prompts: number[][], responses: number[][], padId: number): Sequences {
  const { ids, mask } = padBatch(prompts.map((p, i) => ({
    ids: [...p, ...responses[i]],
    mask: [...p.map(() => 0), ...responses[i].map(() => 1)],
  })), padId);
  return { ids, mask, start: prompts.map((p) => p.length) };
}

/** A per-token table [B][T] computed `chunk` rows at a time (so only one chunk's activations are held). */
export function inChunks(seq: Pick<Sequences, 'ids' | 'mask'>, chunk: number, fn: (ids: number[][], mask: number[][]) => tf.Tensor2D): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < seq.ids.length; s += chunk) {
    const t = fn(seq.ids.slice(s, s + chunk), seq.mask.slice(s, s + chunk));
    out.push(...(t.arraySync() as number[][]));
    t.dispose();
  }
  return out;
}

/**
 * The temperature RL scores its samples at: TRL's PPO (and GRPO) divide the policy's and the
 * reference's logits by `temperature + 1e-7` for the ratio, the KL and the reference alike, so the
 * log-probs are those of the distribution the responses were sampled from.
 */
export function scoringTemperature(samplingTemperature: number): number {
  return samplingTemperature + 1e-7;
}

/**
 * Per-token log-probs [B][T] (0 off the mask) without gradients, in chunks of `chunk` rows, with
 * the logits divided by `temperature` (pass scoringTemperature(sampling temperature) in RL).
 */
export function tokenLogProbs(model: CausalLM, seq: Pick<Sequences, 'ids' | 'mask'>, temperature = 1, chunk = 16): number[][] {
  return inChunks(seq, chunk, (ids, mask) => maskedTokenLogProbs(model, ids, mask, { temperature }));
}

/** Rows `idx` of a [B][T] table. */
function pick<T>(rows: T[], idx: number[]): T[] {
  return idx.map((i) => rows[i]);
}

/** Cuts a mini-batch's rows to its own longest sequence. */
function trimmed<B extends { ids: number[][]; mask: number[][] }>(b: B, fields: (keyof B)[]): B {
  let T = 0;
  for (const m of b.mask) T = Math.max(T, m.lastIndexOf(1) + 1);
  const out = { ...b };
  for (const f of ['ids', 'mask', ...fields] as (keyof B)[]) (out[f] as unknown) = (b[f] as number[][]).map((r) => r.slice(0, T));
  return out;
}

/** Shuffled mini-batches of row indices for each epoch. */
export function miniBatches(n: number, size: number, epochs: number, rng: Rng): number[][] {
  const out: number[][] = [];
  for (let e = 0; e < epochs; e++) {
    const order = rng.shuffle([...Array(n).keys()]);
    for (let s = 0; s < n; s += size) out.push(order.slice(s, s + size));
  }
  return out;
}

/** Rows `idx` of the batch's ids, mask and per-token `fields`, cut to their own longest sequence. */
export function miniBatch<K extends string>(batch: Pick<Sequences, 'ids' | 'mask'> & Record<K, number[][]>, idx: number[], fields: K[]): Pick<Sequences, 'ids' | 'mask'> & Record<K, number[][]> {
  const out = { ids: pick(batch.ids, idx), mask: pick(batch.mask, idx) } as Pick<Sequences, 'ids' | 'mask'> & Record<K, number[][]>;
  for (const f of fields) (out as Record<K, number[][]>)[f] = pick(batch[f], idx);
  return trimmed(out, fields);
}

/** A response-level number broadcast over its tokens (0 off the mask). */
export function broadcast(values: number[], mask: number[][]): number[][] {
  return mask.map((m, b) => m.map((x) => x * values[b]));
}

export function tensor(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0].length], 'float32');
}
