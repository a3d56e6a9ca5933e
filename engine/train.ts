/**
 * One optimisation step: gradients of a loss over one or more micro-batches (accumulated
 * and averaged), clipped to a global norm, then applied by AdamW at the scheduled rate.
 * Every intermediate tensor is disposed, so the live tensor count stays flat across steps.
 */
import * as tf from './tf.ts';
import type { CausalLM } from './model.ts';
import { flatSquaredNorm, type AdamW } from './optim.ts';

/** sqrt of the sum of squares of all gradients. */
export function globalNorm(grads: Map<string, tf.Tensor>): number {
  const total = tf.tidy(() => tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g)))));
  const value = Math.sqrt(total.dataSync()[0]);
  total.dispose();
  return value;
}

/**
 * Scales the gradients (in place in the map, old tensors disposed) so that their global norm
 * is at most maxNorm (factor maxNorm / (norm + 1e-6), as PyTorch's clip_grad_norm_). Returns the norm before.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): number {
  const norm = globalNorm(grads);
  const scale = maxNorm / (norm + 1e-6);
  if (scale < 1) {
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, scale));
      g.dispose();
    }
  }
  return norm;
}

/** Averaged gradients of the loss over the micro-batches, by parameter name, and the mean loss. */
export function accumulateGradients<M>(
  model: CausalLM,
  microbatches: M[],
  lossFn: (model: CausalLM, batch: M) => tf.Scalar,
): { grads: Map<string, tf.Tensor>; loss: number } {
  if (microbatches.length === 0) throw new Error('accumulateGradients: no micro-batches');
  const vars = [...model.params.values()];
  const sum = new Map<string, tf.Tensor>();
  let lossSum = 0;
  for (const mb of microbatches) {
    const { value, grads } = tf.variableGrads(() => lossFn(model, mb), vars);
    lossSum += value.dataSync()[0];
    value.dispose();
    model.params.forEach((v, name) => {
      const g = grads[v.name];
      if (!g) return;
      const prev = sum.get(name);
      if (prev) {
        sum.set(name, tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else sum.set(name, g);
    });
  }
  const n = microbatches.length;
  if (n > 1) {
    for (const [name, g] of sum) {
      sum.set(name, tf.div(g, n));
      g.dispose();
    }
  }
  return { grads: sum, loss: lossSum / n };
}

export interface StepResult {
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  lr: number;
}

/**
 * Accumulate over the micro-batches, clip (when maxGradNorm is set), apply AdamW with lr. The
 * gradients are summed, measured, clipped and applied as one flat vector in the optimizer's
 * layout: a few kernels per step instead of a few per parameter.
 */
export function trainStep<M>(
  model: CausalLM,
  optimizer: AdamW,
  microbatches: M[],
  lossFn: (model: CausalLM, batch: M) => tf.Scalar,
  opts: { lr: number; maxGradNorm?: number },
): StepResult {
  if (microbatches.length === 0) throw new Error('trainStep: no micro-batches');
  const vars = [...model.params.values()];
  let sum: tf.Tensor | undefined;
  let present: boolean[] | undefined;
  let lossSum = 0;
  try {
    for (const mb of microbatches) {
      const { value, grads } = tf.variableGrads(() => lossFn(model, mb), vars);
      lossSum += value.dataSync()[0];
      value.dispose();
      const byName = new Map<string, tf.Tensor>();
      model.params.forEach((v, name) => { if (grads[v.name]) byName.set(name, grads[v.name]); });
      const f = optimizer.flatten(byName);
      tf.dispose(Object.values(grads));
      present = present ? present.map((p, i) => p || f.present[i]) : f.present;
      if (sum) {
        const prev = sum;
        sum = tf.add(prev, f.flat);
        prev.dispose();
        f.flat.dispose();
      } else sum = f.flat;
    }
    const n = microbatches.length;
    if (n > 1) {
      const prev = sum!;
      sum = tf.div(prev, n);
      prev.dispose();
    }
    const gradNorm = applyFlatGradient(optimizer, sum as tf.Tensor1D, present, opts);
    return { loss: lossSum / n, gradNorm, lr: opts.lr };
  } finally {
    sum?.dispose();
  }
}

/**
 * The end of a step, from the gradient flat in the optimizer's layout (not disposed here):
 * measure its global norm, clip it to maxGradNorm when set, apply it at rate lr. Returns the
 * norm before clipping.
 */
export function applyFlatGradient(optimizer: AdamW, grad: tf.Tensor1D, present: boolean[] | undefined, opts: { lr: number; maxGradNorm?: number }): number {
  const total = flatSquaredNorm(grad);
  const gradNorm = Math.sqrt(total.dataSync()[0]);
  total.dispose();
  const scale = opts.maxGradNorm === undefined ? 1 : opts.maxGradNorm / (gradNorm + 1e-6);
  const clipped = scale < 1 ? tf.mul(grad, scale) as tf.Tensor1D : grad;
  try {
    optimizer.applyFlat(clipped, opts.lr, present);
  } finally {
    if (clipped !== grad) clipped.dispose();
  }
  return gradNorm;
}
