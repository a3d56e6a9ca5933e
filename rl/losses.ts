/**
 * Policy and value losses on per-token tensors [B, T] with a 0/1 mask of the response
 * tokens, each a small pure function, registered by name. Means are over the masked tokens.
 *
 *   ppo_clip   -min(ratio * A, clip(ratio, 1 - c, 1 + c_high) * A),  ratio = exp(logp - old_logp),
 *              c_high = c unless given (asymmetric clipping, DAPO's clip-higher)
 *   kl k1      logp - ref_logp                       (unbiased, can be negative)
 *   kl k2      0.5 * (logp - ref_logp)^2
 *   kl k3      exp(ref - logp) - (ref - logp) - 1    (non-negative, low variance)
 *   value      0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)
 *
 * How per-token losses x (masked by m, B sequences) become one number (TRL's loss_type):
 *   grpo       mean over sequences of (sum_t x m / sum_t m)          each sequence weighs the same
 *   dr_grpo    sum x m / (B * L), L = the max completion length       a constant divisor (Dr. GRPO)
 *   dapo       sum x m / sum m                                        each token weighs the same
 */
import * as tf from '../engine/tf.ts';

// The engine registers gradients only for the kernels it needs (engine/gradients.ts), not for
// Maximum or ClipByValue; max and clip are built here from products with 0/1 masks that are
// constants (detached copies), which gives the same gradients.

/** A copy of t that gradients do not flow through. */
export function detach(t: tf.Tensor): tf.Tensor {
  return tf.tensor(t.dataSync(), t.shape, t.dtype);
}

/** Elementwise max(a, b); the gradient goes to the larger one (to a on ties). */
export function maximum(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const takeA = detach(tf.cast(tf.greaterEqual(a, b), 'float32'));
    return tf.add(tf.mul(a, takeA), tf.mul(b, tf.sub(1, takeA)));
  });
}

/** Elementwise clip to [lo, hi]; gradient 1 inside the range, 0 outside. */
export function clip(x: tf.Tensor, lo: number, hi: number): tf.Tensor {
  return tf.tidy(() => {
    const inside = detach(tf.cast(tf.logicalAnd(tf.greaterEqual(x, lo), tf.lessEqual(x, hi)), 'float32'));
    const bound = detach(tf.clipByValue(x, lo, hi));
    return tf.add(tf.mul(x, inside), tf.mul(bound, tf.sub(1, inside)));
  });
}

/** Mean of x over the tokens where mask is 1. */
export function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar);
}

export interface PolicyLoss {
  loss: tf.Scalar;
  /** Share of tokens where the clipped term was the smaller one. */
  clipFrac: tf.Scalar;
}

/**
 * The clipped surrogate per token (unmasked): the loss and a 0/1 tensor of the tokens where the
 * clipped term was taken (it was the larger loss). The ratio is clipped to [1 - clipLow, 1 + clipHigh].
 */
export function ppoClipTokens(logp: tf.Tensor, oldLogp: tf.Tensor, advantages: tf.Tensor, clipLow: number, clipHigh = clipLow): { loss: tf.Tensor; clipped: tf.Tensor } {
  return tf.tidy(() => {
    const ratio = tf.exp(tf.sub(logp, oldLogp));
    const unclipped = tf.mul(tf.neg(advantages), ratio);
    const clippedTerm = tf.mul(tf.neg(advantages), clip(ratio, 1 - clipLow, 1 + clipHigh));
    return { loss: maximum(unclipped, clippedTerm), clipped: tf.cast(tf.greater(clippedTerm, unclipped), 'float32') };
  });
}

export function ppoClipLoss(logp: tf.Tensor, oldLogp: tf.Tensor, advantages: tf.Tensor, mask: tf.Tensor, clipRange: number, clipHigh = clipRange): PolicyLoss {
  return tf.tidy(() => {
    const t = ppoClipTokens(logp, oldLogp, advantages, clipRange, clipHigh);
    return { loss: maskedMean(t.loss, mask), clipFrac: maskedMean(t.clipped, mask) };
  });
}

export { LOSS_TYPES, type LossType } from './loss-types.ts';
import type { LossType } from './loss-types.ts';

/**
 * Per-token values [B, T] reduced to the loss as `lossType` says (the table above);
 * `maxCompletionLength` is dr_grpo's L.
 */
export function aggregateTokens(x: tf.Tensor, mask: tf.Tensor, lossType: LossType, maxCompletionLength?: number): tf.Scalar {
  return tf.tidy(() => {
    switch (lossType) {
      case 'dapo':
        return maskedMean(x, mask);
      case 'grpo': {
        const perSeq = tf.div(tf.sum(tf.mul(x, mask), 1), tf.maximum(tf.sum(mask, 1), 1));
        return tf.mean(perSeq) as tf.Scalar;
      }
      case 'dr_grpo': {
        if (!(maxCompletionLength !== undefined && maxCompletionLength > 0)) throw new Error('aggregateTokens: dr_grpo needs the max completion length');
        return tf.div(tf.sum(tf.mul(x, mask)), x.shape[0] * maxCompletionLength) as tf.Scalar;
      }
    }
  });
}

export function klK1(logp: tf.Tensor, refLogp: tf.Tensor): tf.Tensor {
  return tf.sub(logp, refLogp);
}

export function klK2(logp: tf.Tensor, refLogp: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.square(tf.sub(logp, refLogp)), 0.5));
}

export function klK3(logp: tf.Tensor, refLogp: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const d = tf.sub(refLogp, logp);
    return tf.sub(tf.sub(tf.exp(d), d), 1);
  });
}

export function clippedValueLoss(values: tf.Tensor, oldValues: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor, clipRange: number): tf.Scalar {
  return tf.tidy(() => {
    const clipped = tf.add(oldValues, clip(tf.sub(values, oldValues), -clipRange, clipRange));
    const worst = maximum(tf.square(tf.sub(values, returns)), tf.square(tf.sub(clipped, returns)));
    return tf.mul(maskedMean(worst, mask), 0.5) as tf.Scalar;
  });
}

export const POLICY_LOSSES = { ppo_clip: ppoClipLoss } as const;
export const KL_PENALTIES = { k1: klK1, k2: klK2, k3: klK3 } as const;
export const VALUE_LOSSES = { clipped: clippedValueLoss } as const;
export type KlPenalty = keyof typeof KL_PENALTIES;
