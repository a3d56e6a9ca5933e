/**
 * The GRPO policy update: group-relative advantages (rl/advantages.ts) on every response
 * token, the clipped PPO surrogate against the log-probs the rollout policy gave (all log-probs
 * at the sampling temperature, as TRL computes them; the ratio clipped to
 * [1 - clip, 1 + clipHigh]), plus klCoef (TRL's beta) times the per-token estimate of
 * KL(policy || reference) (k3 unless told), both reduced per mini-batch as `lossType` says
 * (rl/losses.ts aggregateTokens; dapo, the token mean, unless told); `epochs` shuffled passes,
 * one AdamW step per mini-batch.
 */
import type { Rng } from '../common/rng.ts';
import * as tf from '../engine/tf.ts';
import { maskedTokenLogProbs } from '../engine/loss.ts';
import type { CausalLM } from '../engine/model.ts';
import type { AdamW } from '../engine/optim.ts';
import { trainStep } from '../engine/train.ts';
import { aggregateTokens, KL_PENALTIES, maskedMean, ppoClipTokens, type KlPenalty, type LossType } from './losses.ts';
import { miniBatch, miniBatches, tensor, type Sequences } from './batch.ts';

export interface PolicyBatch extends Sequences {
  advantages: number[][];
  oldLogp: number[][];
  refLogp: number[][];
}

export interface UpdateOptions {
  lr: number;
  /** The logits are divided by this for the log-probs (scoringTemperature of the sampling temperature). */
  temperature: number;
  /** The lower clip range (TRL's epsilon): the ratio is kept at or above 1 - clip. */
  clip: number;
  /** The upper clip range (TRL's epsilon_high): the ratio is kept at or below 1 + clipHigh; default clip. */
  clipHigh?: number;
  klCoef: number;
  kl?: KlPenalty;
  /** How token losses become the mini-batch's loss (default dapo: the mean over its tokens). */
  lossType?: LossType;
  /** dr_grpo's constant: the max completion length (response_length). */
  maxCompletionLength?: number;
  epochs: number;
  miniBatchSize: number;
  maxGradNorm: number;
}

export interface UpdateStats {
  loss: number;
  pg_loss: number;
  kl: number;
  clip_frac: number;
  grad_norm: number;
  steps: number;
}

export interface GrpoLossInput {
  /** Per-token log-probs of the policy being trained [B, T]. */
  logp: tf.Tensor;
  oldLogp: tf.Tensor;
  refLogp: tf.Tensor;
  advantages: tf.Tensor;
  mask: tf.Tensor;
}

export interface GrpoLoss {
  /** What is minimised: pg + klCoef * kl, each reduced by lossType. */
  loss: tf.Scalar;
  /** The surrogate, reduced by lossType. */
  pg: tf.Scalar;
  /** The KL estimate, token mean (whatever the loss type). */
  kl: tf.Scalar;
  /** Share of tokens where the clipped term was taken. */
  clipFrac: tf.Scalar;
}

/** The GRPO loss of one mini-batch (see the top of this file). */
export function grpoLoss(b: GrpoLossInput, o: Pick<UpdateOptions, 'clip' | 'clipHigh' | 'klCoef' | 'kl' | 'lossType' | 'maxCompletionLength'>): GrpoLoss {
  return tf.tidy(() => {
    const lossType = o.lossType ?? 'dapo';
    const surrogate = ppoClipTokens(b.logp, b.oldLogp, b.advantages, o.clip, o.clipHigh ?? o.clip);
    const klTokens = KL_PENALTIES[o.kl ?? 'k3'](b.logp, b.refLogp);
    const pg = aggregateTokens(surrogate.loss, b.mask, lossType, o.maxCompletionLength);
    const klLoss = aggregateTokens(klTokens, b.mask, lossType, o.maxCompletionLength);
    const kl = lossType === 'dapo' ? klLoss : maskedMean(klTokens, b.mask);
    return { loss: tf.add(pg, tf.mul(klLoss, o.klCoef)) as tf.Scalar, pg, kl, clipFrac: maskedMean(surrogate.clipped, b.mask) };
  });
}

export function grpoUpdate(policy: CausalLM, optimizer: AdamW, batch: PolicyBatch, o: UpdateOptions, rng: Rng): UpdateStats {
  const sums = { loss: 0, pg_loss: 0, kl: 0, clip_frac: 0, grad_norm: 0 };
  const plan = miniBatches(batch.ids.length, o.miniBatchSize, o.epochs, rng);
  for (const idx of plan) {
    const mb = miniBatch(batch, idx, ['advantages', 'oldLogp', 'refLogp']);
    let pg = 0, kl = 0, cf = 0;
    const r = trainStep(policy, optimizer, [mb], (model, b) => tf.tidy(() => {
      const logp = maskedTokenLogProbs(model, b.ids, b.mask, { temperature: o.temperature });
      const l = grpoLoss({ logp, oldLogp: tensor(b.oldLogp), refLogp: tensor(b.refLogp), advantages: tensor(b.advantages), mask: tensor(b.mask) }, o);
      pg = l.pg.dataSync()[0];
      cf = l.clipFrac.dataSync()[0];
      kl = l.kl.dataSync()[0];
      return l.loss;
    }), { lr: o.lr, maxGradNorm: o.maxGradNorm });
    sums.loss += r.loss; sums.pg_loss += pg; sums.kl += kl; sums.clip_frac += cf; sums.grad_norm += r.gradNorm;
  }
  const n = plan.length;
  return { loss: sums.loss / n, pg_loss: sums.pg_loss / n, kl: sums.kl / n, clip_frac: sums.clip_frac / n, grad_norm: sums.grad_norm / n, steps: n };
}
