/**
 * Gradients of the kernels the engine and its losses differentiate through. tfjs-core's
 * package entry (the one Node loads) registers none; the union @tensorflow/tfjs package
 * would, but is not a dependency. Each is the textbook derivative; test/engine/gradients.test.ts
 * and op-gradients.test.ts check them against finite differences. They take the place of
 * tfjs's own where both exist (see registerGradients).
 */
import * as tf from '@tensorflow/tfjs-core';

type Saved = tf.Tensor[];
type Attrs = Record<string, unknown>;
type GradFn = (dy: tf.Tensor, saved: Saved, attrs: Attrs) => Record<string, () => tf.Tensor>;

/**
 * Sums a broadcast gradient back down to the input's shape. No Reshape where the shape already
 * fits (on tfjs-node every Reshape is a call into TensorFlow; a clone shares the data).
 */
function reduceTo(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, dy.shape);
  const summed = axes.length > 0 ? tf.sum(dy, axes) : dy;
  if (tf.util.arraysEqual(summed.shape, shape)) return summed === dy ? tf.clone(dy) : summed;
  return tf.reshape(summed, shape);
}

/** Spreads a reduced gradient back over the input's shape (for Sum and Mean). */
function expandTo(dy: tf.Tensor, xShape: number[], axis: unknown): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis as number | number[], xShape);
  const kept = xShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return tf.mul(tf.reshape(dy, kept), tf.ones(xShape));
}

/** x as float32 (no copy when it already is: a same-type Cast still copies on some backends). */
function asFloat(x: tf.Tensor): tf.Tensor {
  return x.dtype === 'float32' ? x : tf.cast(x, 'float32');
}

const grads: Array<{ kernel: string; save?: string[]; all?: boolean; outputs?: boolean[]; fn: GradFn }> = [
  { kernel: tf.Add, save: ['a', 'b'], fn: (dy, [a, b]) => ({ a: () => reduceTo(dy, a.shape), b: () => reduceTo(dy, b.shape) }) },
  { kernel: tf.Sub, save: ['a', 'b'], fn: (dy, [a, b]) => ({ a: () => reduceTo(dy, a.shape), b: () => tf.neg(reduceTo(dy, b.shape)) }) },
  {
    kernel: tf.Multiply, save: ['a', 'b'],
    fn: (dy, [a, b]) => ({ a: () => reduceTo(tf.mul(dy, asFloat(b)), a.shape), b: () => reduceTo(tf.mul(dy, asFloat(a)), b.shape) }),
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
  { kernel: tf.AddN, all: true, fn: (dy, inputs) => Object.fromEntries(inputs.map((_, i) => [String(i), () => tf.clone(dy)])) },
  { kernel: tf.BroadcastTo, save: ['x'], fn: (dy, [x]) => ({ x: () => reduceTo(dy, x.shape) }) },
  // Element-wise ops the losses of later stages use (ratios, clipping, masking).
  {
    kernel: tf.Maximum, save: ['a', 'b'],
    fn: (dy, [a, b]) => ({
      a: () => reduceTo(tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')), a.shape),
      b: () => reduceTo(tf.mul(dy, tf.cast(tf.less(a, b), 'float32')), b.shape),
    }),
  },
  {
    kernel: tf.Minimum, save: ['a', 'b'],
    fn: (dy, [a, b]) => ({
      a: () => reduceTo(tf.mul(dy, tf.cast(tf.lessEqual(a, b), 'float32')), a.shape),
      b: () => reduceTo(tf.mul(dy, tf.cast(tf.greater(a, b), 'float32')), b.shape),
    }),
  },
  {
    kernel: tf.ClipByValue, save: ['x'],
    fn: (dy, [x], attrs) => {
      const inside = tf.logicalAnd(tf.greaterEqual(x, attrs.clipValueMin as number), tf.lessEqual(x, attrs.clipValueMax as number));
      return { x: () => tf.mul(dy, tf.cast(inside, 'float32')) };
    },
  },
  { kernel: tf.Abs, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.mul(dy, tf.sign(x)) }) },
  { kernel: tf.Sqrt, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.div(dy, tf.mul(tf.sqrt(x), 2)) }) },
  { kernel: tf.Tanh, outputs: [true], fn: (dy, [y]) => ({ x: () => tf.mul(dy, tf.sub(1, tf.square(y))) }) },
  { kernel: tf.Relu, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.mul(dy, tf.cast(tf.greater(x, 0), 'float32')) }) },
  { kernel: tf.Softplus, save: ['x'], fn: (dy, [x]) => ({ x: () => tf.mul(dy, tf.sigmoid(x)) }) },
  {
    kernel: tf.Select, save: ['condition', 't', 'e'],
    fn: (dy, [cond, t, e]) => {
      const c = tf.cast(cond, 'float32');
      return {
        condition: () => tf.zerosLike(c),
        t: () => reduceTo(tf.mul(dy, c), t.shape),
        e: () => reduceTo(tf.mul(dy, tf.sub(1, c)), e.shape),
      };
    },
  },
  {
    kernel: tf.Max, save: ['x'], outputs: [true],
    fn: (dy, saved, attrs) => {
      const [x, y] = saved;
      const axes = tf.util.parseAxisParam(attrs.reductionIndices as number | number[], x.shape);
      const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const hit = tf.cast(tf.equal(x, tf.reshape(y, kept)), 'float32');
      return { x: () => tf.mul(hit, tf.reshape(dy, kept)) };
    },
  },
  {
    kernel: tf.Tile, save: ['x'],
    fn: (dy, [x], attrs) => {
      // dy is [r0*x0, r1*x1, ...]: view it as [r0, x0, r1, x1, ...] and sum the repeat axes.
      const reps = attrs.reps as number[];
      const shape = x.shape.flatMap((d, i) => [reps[i], d]);
      const axes = reps.map((_, i) => 2 * i);
      return { x: () => tf.reshape(tf.sum(tf.reshape(dy, shape), axes), x.shape) };
    },
  },
  {
    // Gather along axis 0 (e.g. picking rows or log-probs): a one-hot matMul, since wasm
    // has no UnsortedSegmentSum.
    kernel: tf.GatherV2, save: ['x', 'indices'],
    fn: (dy, [x, indices], attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
      if (axis !== 0 || (attrs.batchDims as number) !== 0) throw new Error('gather gradient: only axis 0 without batch dimensions is supported');
      const n = indices.size, rest = x.size / x.shape[0];
      return {
        x: () => {
          const oneHotT = tf.transpose(tf.cast(tf.oneHot(tf.reshape(tf.cast(indices, 'int32'), [n]) as tf.Tensor1D, x.shape[0]), 'float32'));
          return tf.reshape(tf.matMul(oneHotT as tf.Tensor2D, tf.reshape(dy, [n, rest]) as tf.Tensor2D), x.shape);
        },
        indices: () => tf.zerosLike(indices),
      };
    },
  },
  {
    kernel: tf.SplitV,
    fn: (dy, _s, attrs) => ({ x: () => tf.concat(dy as unknown as tf.Tensor[], attrs.axis as number) }),
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

// Piecewise-constant ops: zero gradient (so a mask computed from a tensor does not stop backprop).
for (const kernel of [tf.Greater, tf.GreaterEqual, tf.Less, tf.LessEqual, tf.Equal, tf.NotEqual]) {
  grads.push({ kernel, save: ['a', 'b'], fn: (_dy, [a, b]) => ({ a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) }) });
}
for (const kernel of [tf.Sign, tf.Floor, tf.Round, tf.Ceil]) {
  grads.push({ kernel, save: ['x'], fn: (_dy, [x]) => ({ x: () => tf.zerosLike(x) }) });
}

/**
 * Registers these gradients; with `replace`, over ones registered since (loading tfjs-node loads
 * the union package, whose gradients then take the kernels: its Maximum and Minimum gradients, for
 * one, do not sum a broadcast input's gradient back to its shape). engine/backend.ts calls it so
 * after loading a native backend, so every backend differentiates the same way.
 */
export function registerGradients(replace = false): void {
  for (const g of grads) {
    if (!replace && tf.getGradient(g.kernel)) continue;
    tf.registerGradient({
      kernelName: g.kernel,
      inputsToSave: g.save,
      saveAllInputs: g.all,
      outputsToSave: g.outputs,
      gradFunc: ((dy: tf.Tensor, saved: Saved, attrs: Attrs) => g.fn(dy, saved, attrs)) as unknown as tf.GradFunc,
    });
  }
}
registerGradients();
