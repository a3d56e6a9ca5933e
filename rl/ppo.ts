/**
 * PPO with a value model, as in HuatuoGPT-o1's RL stage.
 *
 * Value model: a copy of a causal LM whose output head is untied from the embedding; the
 * value of a state is the head's first output, i.e. a linear layer on the final (normed)
 * hidden state. (The engine's forward returns only logits, so the head's other columns
 * are computed and ignored.) It starts at zero: the head is initialised to zeros.
 *
 * Every log-prob (old, reference, new) is taken at the sampling temperature, logits divided by
 * temperature + 1e-7, as TRL's PPOTrainer does.
 *
 * Rewards per response token: -kl_coef * (log pi_old - log pi_ref), plus the verifier
 * reward on the last token. GAE (gamma, lambda) gives advantages (whitened over the batch)
 * and returns; each of `epochs` passes takes mini-batches, one clipped-surrogate AdamW step
 * for the policy and one clipped value-loss step (times vf_coef) for the value model.
 */
import type { Rng } from '../common/rng.ts';
import * as tf from '../engine/tf.ts';
import { loadModel } from '../engine/checkpoint.ts';
import { maskedTokenLogProbs, shiftRight } from '../engine/loss.ts';
import { CausalLM } from '../engine/model.ts';
import type { AdamW } from '../engine/optim.ts';
import { trainStep } from '../engine/train.ts';
import { gaeAdvantages, whiten } from './advantages.ts';
import { inChunks, miniBatch, miniBatches, tensor, type Sequences } from './batch.ts';
import { clippedValueLoss, POLICY_LOSSES } from './losses.ts';

/** A value model from a model folder: same trunk, untied zero head. A folder already untied is taken as is. */
export async function loadValueModel(dir: string): Promise<CausalLM> {
  const { model } = await loadModel(dir);
  if (!model.config.tie_word_embeddings) return model;
  const vm = new CausalLM({ ...model.config, tie_word_embeddings: false });
  vm.setWeights(model.getWeights());
  model.dispose();
  return vm;
}

/** Values [B, T]: entry t is the value of the state before token t (the head at position t-1), 0 off the mask. */
export function tokenValues(vm: CausalLM, ids: number[][], mask: number[][]): tf.Tensor2D {
  return tf.tidy(() => {
    const B = ids.length, T = ids[0].length;
    const logits = vm.forward(tf.tensor2d(ids, [B, T], 'int32'));
    const v = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T, 1]), [B, T]) as tf.Tensor2D;
    return tf.mul(shiftRight(v), tensor(mask)) as tf.Tensor2D;
  });
}

/** Values [B][T] without gradients, in chunks of `chunk` rows. */
export function valuesOf(vm: CausalLM, seq: Pick<Sequences, 'ids' | 'mask'>, chunk = 16): number[][] {
  return inChunks(seq, chunk, (ids, mask) => tokenValues(vm, ids, mask));
}

/** Per-token rewards, advantages (GAE, then whitened) and returns for the response tokens. */
export function ppoTargets(seq: Sequences, responseLengths: number[], scores: number[], oldLogp: number[][], refLogp: number[][], values: number[][],
  o: { klCoef: number; gamma: number; lam: number }): { advantages: number[][]; returns: number[][]; kl: number } {
  const T = seq.ids[0].length;
  const adv: number[][] = [], ret: number[][] = [], segments: number[][] = [];
  let klSum = 0, klCount = 0;
  seq.ids.forEach((_, b) => {
    const s = seq.start[b], n = responseLengths[b];
    const rewards: number[] = [], vals: number[] = [];
    for (let t = s; t < s + n; t++) {
      const kl = oldLogp[b][t] - refLogp[b][t];
      klSum += kl; klCount++;
      rewards.push(-o.klCoef * kl + (t === s + n - 1 ? scores[b] : 0));
      vals.push(values[b][t]);
    }
    const g = gaeAdvantages(rewards, vals, o.gamma, o.lam);
    segments.push(g.advantages);
    const a = new Array<number>(T).fill(0), r = new Array<number>(T).fill(0);
    g.returns.forEach((x, i) => (r[s + i] = x));
    adv.push(a); ret.push(r);
  });
  const white = whiten(segments);
  white.forEach((w, b) => w.forEach((x, i) => (adv[b][seq.start[b] + i] = x)));
  return { advantages: adv, returns: ret, kl: klCount ? klSum / klCount : 0 };
}

export interface PpoBatch extends Sequences {
  advantages: number[][];
  returns: number[][];
  oldLogp: number[][];
  oldValues: number[][];
}

export interface PpoOptions {
  lr: number;
  /** The logits are divided by this for the log-probs (scoringTemperature of the sampling temperature). */
  temperature: number;
  clip: number;
  clipValue: number;
  vfCoef: number;
  epochs: number;
  miniBatchSize: number;
  maxGradNorm: number;
}

export function ppoUpdate(policy: CausalLM, optimizer: AdamW, vm: CausalLM, vOptimizer: AdamW, batch: PpoBatch, o: PpoOptions, rng: Rng): Record<string, number> {
  const sums = { pg_loss: 0, vf_loss: 0, clip_frac: 0, grad_norm: 0, value_grad_norm: 0 };
  const plan = miniBatches(batch.ids.length, o.miniBatchSize, o.epochs, rng);
  for (const idx of plan) {
    const mb = miniBatch(batch, idx, ['advantages', 'returns', 'oldLogp', 'oldValues']);
    let cf = 0;
    const r = trainStep(policy, optimizer, [mb], (model, b) => tf.tidy(() => {
      const p = POLICY_LOSSES.ppo_clip(maskedTokenLogProbs(model, b.ids, b.mask, { temperature: o.temperature }), tensor(b.oldLogp), tensor(b.advantages), tensor(b.mask), o.clip);
      cf = p.clipFrac.dataSync()[0];
      return p.loss;
    }), { lr: o.lr, maxGradNorm: o.maxGradNorm });
    const v = trainStep(vm, vOptimizer, [mb], (model, b) => tf.tidy(() =>
      tf.mul(clippedValueLoss(tokenValues(model, b.ids, b.mask), tensor(b.oldValues), tensor(b.returns), tensor(b.mask), o.clipValue), o.vfCoef) as tf.Scalar,
    ), { lr: o.lr, maxGradNorm: o.maxGradNorm });
    sums.pg_loss += r.loss; sums.vf_loss += v.loss / Math.max(o.vfCoef, 1e-12); sums.clip_frac += cf;
    sums.grad_norm += r.gradNorm; sums.value_grad_norm += v.gradNorm;
  }
  const n = plan.length;
  return { loss: sums.pg_loss / n, pg_loss: sums.pg_loss / n, vf_loss: sums.vf_loss / n, clip_frac: sums.clip_frac / n, grad_norm: sums.grad_norm / n, value_grad_norm: sums.value_grad_norm / n, steps: n };
}

