import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { rmsNorm, swiGlu } from '../../engine/ops.ts';

before(async () => { await initBackend(); });

/** Compares tf.grads of a scalar function with central differences at each input entry. */
function checkGrad(label: string, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): void {
  // A weighted sum, so every output entry has its own weight.
  const scalar = (...xs: tf.Tensor[]) => {
    const y = f(...xs);
    return tf.sum(tf.mul(y, tf.reshape(tf.range(1, y.size + 1), y.shape))) as tf.Scalar;
  };
  const grads = tf.grads(scalar)(inputs);
  const eps = 1e-2;
  inputs.forEach((x, k) => {
    const g = grads[k].dataSync();
    const base = x.dataSync().slice();
    for (let i = 0; i < base.length; i++) {
      const at = (v: number) => {
        const d = base.slice(); d[i] = v;
        const xs = inputs.map((t, j) => (j === k ? tf.tensor(d, x.shape) : t));
        return scalar(...xs).dataSync()[0];
      };
      const numeric = (at(base[i] + eps) - at(base[i] - eps)) / (2 * eps);
      assert.ok(Math.abs(numeric - g[i]) <= 2e-2 + 0.02 * Math.abs(numeric), `${label}: input ${k}[${i}] analytic ${g[i]} vs numeric ${numeric}`);
    }
  });
}

// Values kept away from kinks (ties, clip bounds, zero) so finite differences are valid.
const a = () => tf.tensor2d([[0.3, -1.2, 2.1], [-0.7, 1.6, -2.4]]);
const b = () => tf.tensor1d([0.9, -0.4, 1.1]);

test('element-wise gradients match finite differences', () => {
  checkGrad('add/sub/mul/div broadcast', (x, y) => tf.div(tf.mul(tf.sub(tf.add(x, y), 0.5), x), tf.add(tf.square(y), 1)), [a(), b()]);
  checkGrad('maximum', (x, y) => tf.maximum(x, y), [a(), b()]);
  checkGrad('minimum', (x, y) => tf.minimum(x, y), [a(), b()]);
  checkGrad('clipByValue', (x) => tf.clipByValue(x, -1, 1), [a()]);
  checkGrad('abs/neg', (x) => tf.neg(tf.abs(x)), [a()]);
  checkGrad('sqrt/rsqrt/log', (x) => tf.add(tf.sqrt(tf.abs(x)), tf.add(tf.rsqrt(tf.abs(x)), tf.log(tf.abs(x)))), [a()]);
  checkGrad('exp/tanh/sigmoid/softplus/relu', (x) => tf.addN([tf.exp(x), tf.tanh(x), tf.sigmoid(x), tf.softplus(x), tf.relu(x)]), [a()]);
  checkGrad('where', (x, y) => tf.where(tf.greater(x, 0), x, tf.mul(tf.broadcastTo(y, [2, 3]), 2)), [a(), b()]);
});

test('shape, reduction and indexing gradients match finite differences', () => {
  checkGrad('reshape/transpose', (x) => tf.transpose(tf.reshape(x, [3, 2])), [a()]);
  checkGrad('sum/mean over axes', (x) => tf.add(tf.sum(x, 1, true), tf.mean(x, 0)), [a()]);
  checkGrad('max', (x) => tf.max(x, 1), [a()]);
  checkGrad('softmax', (x) => tf.softmax(x), [a()]);
  checkGrad('logSoftmax', (x) => tf.logSoftmax(x), [a()]);
  checkGrad('slice/concat', (x) => tf.concat([tf.slice(x, [0, 1], [2, 2]), x], 1), [a()]);
  checkGrad('split', (x) => { const [p, q] = tf.split(x, [1, 2], 1); return tf.mul(p, tf.sum(q, 1, true)); }, [a()]);
  checkGrad('tile', (x) => tf.tile(x, [2, 3]), [a()]);
  checkGrad('gather rows', (x) => tf.gather(x, tf.tensor1d([1, 0, 1], 'int32')), [a()]);
  checkGrad('batched matMul, all transposes', (x, y) => tf.addN([
    tf.matMul(x, y), tf.matMul(x, tf.transpose(y, [0, 2, 1]), false, true),
    tf.matMul(tf.transpose(x, [0, 2, 1]), y, true, false), tf.matMul(tf.transpose(x, [0, 2, 1]), tf.transpose(y, [0, 2, 1]), true, true),
  ]), [tf.tensor3d([[[0.1, 0.5], [-0.3, 0.8]], [[1.2, -0.4], [0.6, 0.2]]]), tf.tensor3d([[[0.7, -0.2], [0.4, 0.9]], [[-0.5, 0.3], [1.1, -0.8]]])]);
});

test('the fused RMSNorm and SwiGLU ops match finite differences and their plain formulas', () => {
  const w = () => tf.tensor1d([1.3, -0.6, 0.8]);
  checkGrad('rmsNorm', (x, g) => rmsNorm(x as tf.Tensor2D, g as tf.Tensor1D, 1e-6), [a(), w()]);
  checkGrad('swiGlu', (g, u) => swiGlu(g as tf.Tensor2D, u as tf.Tensor2D), [a(), tf.tensor2d([[1.1, 0.4, -0.9], [0.2, -1.5, 0.7]])]);
  const x = a(), g = w(), u = tf.tensor2d([[1.1, 0.4, -0.9], [0.2, -1.5, 0.7]]);
  const plainNorm = tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), g);
  const plainGlu = tf.mul(tf.mul(x, tf.sigmoid(x)), u);
  for (const [fused, plain] of [[rmsNorm(x, g, 1e-6), plainNorm], [swiGlu(x, u), plainGlu]]) {
    const f = fused.dataSync(), p = plain.dataSync();
    f.forEach((v, i) => assert.ok(Math.abs(v - p[i]) < 1e-5, `fused ${v} vs plain ${p[i]} at ${i}`));
  }
});
