/**
 * Gradients of the kernels the engine differentiates through. tfjs-core's package entry
 * (the one Node loads) registers none; the union @tensorflow/tfjs package would, but is
 * not a dependency. Each is the textbook derivative; test/engine/gradients.test.ts checks
 * them against finite differences. Kernels already given a gradient are left alone.
 */
import * as tf from '@tensorflow/tfjs-core';

type Saved = tf.Tensor[];
type Attrs = Record<string, unknown>;
type GradFn = (dy: tf.Tensor, saved: Saved, attrs: Attrs) => Record<string, () => tf.Tensor>;

/** Sums a broadcast gradient back down to the input's shape. */
function reduceTo(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, dy.shape);
  const summed = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(summed, shape);
}

/** Spreads a reduced gradient back over the input's shape (for Sum and Mean). */
function expandTo(dy: tf.Tensor, xShape: number[], axis: unknown): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis as number | number[], xShape);
  const kept = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(xShape));
}

const grads: Array<{ kernel: string; save?: string[]; all?: boolean; outputs?: boolean[]; fn: GradFn }> = [
  { kernel: tf.Add, save: ['a', 'b'], fn: (dy, [a, b]) => ({ a: () => reduceTo(dy, a.shape), b: () => reduceTo(dy, b.shape) }) },
  { kernel: tf.Sub, save: ['a', 'b'], fn: (dy, [a, b]) => ({ a: () => reduceTo(dy, a.shape), b: () => tf.neg(reduceTo(dy, b.shape)) }) },
  {
    kernel: tf.Multiply, save: ['a', 'b'],
    fn: (dy, [a, b]) => ({ a: () => reduceTo(tf.mul(dy, tf.cast(b, 'float32')), a.shape), b: () => reduceTo(tf.mul(dy, tf.cast(a, 'float32')), b.shape) }),
  },
  {
    kernel: tf.RealDiv, save: ['a', 'b'],
    fn: (dy, [a, b]) => ({
      a: () => reduceTo(tf.div(dy, b), a.shape),
      b: () => reduceTo(tf.neg(tf.div(tf.mul(dy, a), tf.square(b))), b.shape),
    }),
  },
  { kernel: tf.Neg, fn: (dy) => ({ x: () => tf.neg(dy) }) },
  { kernel: tf.Identity, fn: (dy) => ({ x: () => tf.clone(dy) }) },
  { kernel: tf.Cast, fn: (dy) => ({ x: () => tf.clone(dy) }) },
  { kernel: tf.Reshape, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.reshape(dy, x.shape) }) },
  {
    kernel: tf.Transpose,
    fn: (dy, _s, attrs) => {
      const perm = attrs.perm as number[];
      const inverse = new Array<number>(perm.length);
      perm.forEach((p, i) => { inverse[p] = i; });
      return { x: () => tf.transpose(dy, inverse) };
    },
  },
  {
    kernel: tf.BatchMatMul, save: ['a', 'b'],
    fn: (dy, [a, b], attrs) => {
      const tA = attrs.transposeA as boolean, tB = attrs.transposeB as boolean;
      if (a.rank !== b.rank) throw new Error('BatchMatMul gradient: operands must have the same rank (no broadcasting)');
      if (!tA && !tB) return { a: () => tf.matMul(dy, b, false, true), b: () => tf.matMul(a, dy, true, false) };
      if (!tA && tB) return { a: () => tf.matMul(dy, b, false, false), b: () => tf.matMul(dy, a, true, false) };
      if (tA && !tB) return { a: () => tf.matMul(b, dy, false, true), b: () => tf.matMul(a, dy, false, false) };
      return { a: () => tf.matMul(b, dy, true, true), b: () => tf.matMul(dy, a, true, true) };
    },
  },
  {
    kernel: tf.Softmax, outputs: [true],
    fn: (dy, [y], attrs) => {
      const dim = attrs.dim as number;
      return { logits: () => tf.mul(y, tf.sub(dy, tf.sum(tf.mul(dy, y), dim, true))) };
    },
  },
  { kernel: tf.Square, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.mul(dy, tf.mul(x, 2)) }) },
  { kernel: tf.Rsqrt, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.mul(dy, tf.mul(tf.div(tf.rsqrt(x), x), -0.5)) }) },
  { kernel: tf.Sigmoid, outputs: [true], fn: (dy, [y]) => ({ x: () => tf.mul(dy, tf.mul(y, tf.sub(1, y))) }) },
  { kernel: tf.Exp, outputs: [true], fn: (dy, [y]) => ({ x: () => tf.mul(dy, y) }) },
  { kernel: tf.Log, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.div(dy, x) }) },
  { kernel: tf.Sum, save: ['x'], fn: (dy, [x], attrs) => ({ x: () => expandTo(dy, x.shape, attrs.axis) }) },
  {
    kernel: tf.Mean, save: ['x'],
    fn: (dy, [x], attrs) => {
      const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
      const count = axes.reduce((n, i) => n * x.shape[i], 1);
      return { x: () => tf.div(expandTo(dy, x.shape, attrs.axis), count) };
    },
  },
  {
    kernel: tf.Slice, save: ['x'],
    fn: (dy, [x], attrs) => {
      const begin = attrs.begin as number[], size = attrs.size as number[];
      const pads = x.shape.map((d, i) => [begin[i], d - begin[i] - (size[i] === -1 ? d - begin[i] : size[i])] as [number, number]);
      return { x: () => tf.pad(dy, pads) };
    },
  },
  {
    kernel: tf.Concat, all: true,
    fn: (dy, inputs, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, inputs[0].shape)[0];
      const parts = tf.split(dy, inputs.map((t) => t.shape[axis]), axis);
      return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
    },
  },
];

for (const g of grads) {
  if (tf.getGradient(g.kernel)) continue;
  tf.registerGradient({
    kernelName: g.kernel,
    inputsToSave: g.save,
    saveAllInputs: g.all,
    outputsToSave: g.outputs,
    gradFunc: ((dy: tf.Tensor, saved: Saved, attrs: Attrs) => g.fn(dy, saved, attrs)) as unknown as tf.GradFunc,
  });
}
