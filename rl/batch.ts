/**
 * Update batches: prompt + response as one right-padded sequence, the response tokens
 * marked in the mask, and per-token numbers (log-probs of the old and the reference
 * policy, advantages, values) aligned with it: entry t belongs to token t.
 */
import * as tf from '../engine/tf.ts';
import { maskedTokenLogProbs } from '../engine/loss.ts';
import type { CausalLM } from '../engine/model.ts';

export interface Sequences {
  ids: number[][];
  /** 1 on response tokens. */
  mask: number[][];
  /** Index of each response's first token in its row. */
  start: number[];
}

export function buildSequences(prompts: number[][], responses: number[][], padId: number): Sequences {
  const rows = prompts.map((p, i) => [...p, ...responses[i]]);
  const T = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...r, ...new Array<number>(T - r.length).fill(padId)]),
    mask: prompts.map((p, i) => {
      const m = new Array<number>(T).fill(0);
      for (let t = p.length; t < p.length + responses[i].length; t++) m[t] = 1;
      return m;
    }),
    start: prompts.map((p) => p.length),
  };
}

/** Per-token log-probs [B][T] (0 off the mask) without gradients, in chunks of `chunk` rows. */
export function tokenLogProbs(model: CausalLM, seq: Pick<Sequences, 'ids' | 'mask'>, chunk = 16): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < seq.ids.length; s += chunk) {
    const lp = maskedTokenLogProbs(model, seq.ids.slice(s, s + chunk), seq.mask.slice(s, s + chunk));
    out.push(...(lp.arraySync() as number[][]));
    lp.dispose();
  }
  return out;
}

/** Rows `idx` of a [B][T] table. */
export function pick<T>(rows: T[], idx: number[]): T[] {
  return idx.map((i) => rows[i]);
}

/** A response-level number broadcast over its tokens (0 off the mask). */
export function broadcast(values: number[], mask: number[][]): number[][] {
  return mask.map((m, b) => m.map((x) => x * values[b]));
}

export function tensor(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0].length], 'float32');
}
