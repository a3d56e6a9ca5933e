/**
 * The GRPO policy update: group-relative advantages (rl/advantages.ts) on every response
 * token, the clipped PPO surrogate against the log-probs the rollout policy gave (all log-probs
 * at the sampling temperature, as TRL computes them), plus
 * kl_coef times the k3 estimate of KL(policy || reference), token-averaged per
 * mini-batch; `epochs` shuffled passes, one AdamW step per mini-batch.
 */
import type { Rng } from '../common/rng.ts';
import * as tf from '../engine/tf.ts';
import { maskedTokenLogProbs } from '../engine/loss.ts';
import type { CausalLM } from '../engine/model.ts';
import type { AdamW } from '../engine/optim.ts';
import { trainStep } from '../engine/train.ts';
import { KL_PENALTIES, maskedMean, POLICY_LOSSES, type KlPenalty } from './losses.ts';
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
  clip: number;
  klCoef: number;
  kl?: KlPenalty;
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

export function grpoUpdate(policy: CausalLM, optimizer: AdamW, batch: PolicyBatch, o: UpdateOptions, rng: Rng): UpdateStats {
  const klFn = KL_PENALTIES[o.kl ?? 'k3'];
  const policyLoss = POLICY_LOSSES.ppo_clip;
  const sums = { loss: 0, pg_loss: 0, kl: 0, clip_frac: 0, grad_norm: 0 };
  const plan = miniBatches(batch.ids.length, o.miniBatchSize, o.epochs, rng);
  for (const idx of plan) {
    const mb = miniBatch(batch, idx, ['advantages', 'oldLogp', 'refLogp']);
    let pg = 0, kl = 0, cf = 0;
    const r = trainStep(policy, optimizer, [mb], (model, b) => tf.tidy(() => {
      const mask = tensor(b.mask);
      const logp = maskedTokenLogProbs(model, b.ids, b.mask, { temperature: o.temperature });
      const p = policyLoss(logp, tensor(b.oldLogp), tensor(b.advantages), mask, o.clip);
      const k = maskedMean(klFn(logp, tensor(b.refLogp)), mask);
      pg = p.loss.dataSync()[0];
      cf = p.clipFrac.dataSync()[0];
      kl = k.dataSync()[0];
      return tf.add(p.loss, tf.mul(k, o.klCoef)) as tf.Scalar;
    }), { lr: o.lr, maxGradNorm: o.maxGradNorm });
    sums.loss += r.loss; sums.pg_loss += pg; sums.kl += kl; sums.clip_frac += cf; sums.grad_norm += r.gradNorm;
  }
  const n = plan.length;
  return { loss: sums.loss / n, pg_loss: sums.pg_loss / n, kl: sums.kl / n, clip_frac: sums.clip_frac / n, grad_norm: sums.grad_norm / n, steps: n };
}
