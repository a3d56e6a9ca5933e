/**
 * Token log-probabilities and the losses built on them. Position t of the logits predicts
 * token t+1; a loss mask [B, T] marks which tokens are scored (mask[b][t] = 1: token t
 * counts, so mask[b][0] is never used). The target picking is a one-hot product, which
 * keeps the gradient a plain elementwise one (no gather gradient).
 */
import * as tf from './tf.ts';
import type { CausalLM } from './model.ts';

export type Rows = number[][] | tf.Tensor2D;

function rows(x: Rows): number[][] {
  return Array.isArray(x) ? x : (x.arraySync() as number[][]);
}

/** Next-token targets and weights: targets[t] = ids[t+1], weights[t] = mask[t+1] (0 at the end). */
export function shiftForNextToken(inputIds: Rows, lossMask: Rows): { targets: number[][]; weights: number[][] } {
  const ids = rows(inputIds), mask = rows(lossMask);
  if (ids.length !== mask.length || ids.some((r, b) => r.length !== mask[b].length)) {
    throw new Error(`loss mask shape [${mask.length}, ${mask[0]?.length}] differs from input ids [${ids.length}, ${ids[0]?.length}]`);
  }
  return {
    targets: ids.map((r) => [...r.slice(1), 0]),
    weights: mask.map((r) => [...r.slice(1), 0]),
  };
}

/**
 * log p(targets[b][t]) from logits [B, T, V]: [B, T]. Computed from the softmax kernel (fast
 * on every backend) instead of an explicit log-softmax: with m the row maximum,
 *   log p_t = (x_t - m) + log(max softmax)      since max softmax = 1 / sum exp(x - m) >= 1/V,
 * so nothing underflows; x_t is gathered from the flat logits. The gradient is
 * (onehot - softmax) * dy, its one-hot built only when a gradient is taken.
 */
export function tokenLogProbs(logits: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape;
    const N = B * T;
    const labels = tf.reshape(targets.dtype === 'int32' ? targets : tf.cast(targets, 'int32'), [N]) as tf.Tensor1D;
    // Row n's target sits at n*V + label in the flattened logits.
    const label = labels.dataSync();
    const at = new Int32Array(N);
    for (let n = 0; n < N; n++) at[n] = n * V + label[n];
    const where = tf.tensor1d(at, 'int32');
    const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
      const probs = tf.softmax(x);
      save([probs, labels]);
      const picked = tf.gather(tf.reshape(x, [N * V]), where);
      const value = tf.add(tf.sub(picked, tf.max(x, -1)), tf.log(tf.max(probs, -1)));
      const gradFunc = (dy: tf.Tensor, [p, l]: tf.Tensor[]) => {
        // wasm's OneHot returns zeros when asked for float32: there it is built as int32 and cast.
        const onehot = tf.getBackend() === 'wasm' ? tf.cast(tf.oneHot(l as tf.Tensor1D, V), 'float32') : tf.oneHot(l as tf.Tensor1D, V, 1, 0, 'float32');
        return tf.mul(tf.expandDims(dy, -1), tf.sub(onehot, p));
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return tf.reshape(op(tf.reshape(logits, [N, V])), [B, T]) as tf.Tensor2D;
  });
}

/** Mean negative log-likelihood over the weighted tokens (weights 0/1). */
export function maskedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, weights: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const lp = tokenLogProbs(logits, targets);
    const w = tf.cast(weights, 'float32');
    return tf.div(tf.neg(tf.sum(tf.mul(lp, w))), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
  });
}

/** The model's logits [B, T, V] for the sequences, with their next-token targets and weights [B, T] (call inside a tidy). */
function forwardNextToken(model: CausalLM, inputIds: Rows, lossMask: Rows): { logits: tf.Tensor3D; targets: tf.Tensor2D; weights: tf.Tensor2D } {
  const ids = rows(inputIds);
  const { targets, weights } = shiftForNextToken(ids, lossMask);
  const B = ids.length, T = ids[0].length;
  return {
    logits: model.forward(tf.tensor2d(ids, [B, T], 'int32')),
    targets: tf.tensor2d(targets, [B, T], 'int32'),
    weights: tf.tensor2d(weights, [B, T]),
  };
}

export interface LogProbOptions {
  /**
   * The logits are divided by this before the softmax (default 1: the model's own distribution).
   * RL scores its samples at the sampling temperature (rl/batch.ts scoringTemperature).
   */
  temperature?: number;
}

/**
 * Per-token log-probs of each sequence's own tokens under the model (its logits divided by
 * `temperature` when given), times the mask: [B, T] (entry t scores token t).
 */
export function maskedTokenLogProbs(model: CausalLM, inputIds: Rows, lossMask: Rows, opts: LogProbOptions = {}): tf.Tensor2D {
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`maskedTokenLogProbs: temperature must be a positive number, got ${temperature}`);
  return tf.tidy(() => {
    const { logits, targets, weights } = forwardNextToken(model, inputIds, lossMask);
    const scaled = temperature === 1 ? logits : tf.div(logits, temperature) as tf.Tensor3D;
    return shiftRight(tf.mul(tokenLogProbs(scaled, targets), weights) as tf.Tensor2D);
  });
}

/** [B, T] moved one column to the right, column 0 zero: what position t-1 computed is filed under token t. */
export function shiftRight(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, T] = x.shape;
    return tf.concat([tf.zeros([B, 1]), tf.slice(x, [0, 0], [B, T - 1])], 1) as tf.Tensor2D;
  });
}

/** Sum of log p(token t | tokens < t) over the masked tokens of each sequence: [B]. */
export function sequenceLogProbs(model: CausalLM, inputIds: Rows, lossMask: Rows): tf.Tensor1D {
  return tf.tidy(() => tf.sum(maskedTokenLogProbs(model, inputIds, lossMask), 1) as tf.Tensor1D);
}

/** The causal language-modelling loss: mean NLL of the masked tokens (SFT: the assistant turn). */
export function causalLmLoss(model: CausalLM, inputIds: Rows, lossMask: Rows): tf.Scalar {
  return tf.tidy(() => {
    const { logits, targets, weights } = forwardNextToken(model, inputIds, lossMask);
    return maskedCrossEntropy(logits, targets, weights);
  });
}
