/**
 * Kernel counts of the model and the optimizer (on tfjs-node every kernel is a call into
 * TensorFlow): reshapes only where shapes change, the query scaling folded into RoPE, a causal
 * bias shared by the batch added without reshapes, and AdamW reshaping only its matrices.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { AdamW } from '../../engine/optim.ts';
import { tinyConfig } from './tiny.ts';

before(async () => { await initBackend(); });

type Kernels = Awaited<ReturnType<typeof tf.profile>>['kernels'];

async function forwardKernels(layers: number): Promise<Kernels> {
  const m = new CausalLM(tinyConfig({ num_hidden_layers: layers })).initRandom(3);
  const ids = tf.tensor2d([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]], [2, 6], 'int32');
  const profile = await tf.profile(() => { tf.tidy(() => { m.forward(ids); }); });
  ids.dispose();
  m.dispose();
  return profile.kernels;
}

test('a layer\'s forward reshapes 12 times, multiplies by no scalar and adds the causal bias as it is', async () => {
  const one = await forwardKernels(1), two = await forwardKernels(2);
  const reshapes = (ks: typeof one) => ks.filter((k) => k.name === 'Reshape').length;
  // Queries and keys: 3 in RoPE and 1 into heads each; values 2; the heads back out 2.
  assert.equal(reshapes(two) - reshapes(one), 12);
  const scalarProducts = two.filter((k) => k.name === 'Multiply' && k.inputShapes.some((s) => s.length === 0));
  assert.equal(scalarProducts.length, 0, 'the 1/sqrt(d) query scaling is in the RoPE tables');
  const sameShape = two.filter((k) => k.name === 'Reshape' && k.inputShapes[0].join() === k.outputShapes[0].join());
  assert.equal(sameShape.length, 0);
});

test('AdamW reshapes only the matrices into and out of its flat vector', async () => {
  const params = new Map<string, tf.Variable>([
    ['a.weight', tf.variable(tf.randomNormal([4, 3], 0, 1, 'float32', 1))],
    ['a.bias', tf.variable(tf.randomNormal([3], 0, 1, 'float32', 2))],
    ['norm.weight', tf.variable(tf.ones([3]))],
    ['b.weight', tf.variable(tf.randomNormal([3, 5], 0, 1, 'float32', 3))],
  ]);
  const opt = new AdamW(params, { weightDecay: 0.1 });
  const grads = new Map([...params].map(([n, p]) => [n, tf.randomNormal(p.shape, 0, 1, 'float32', 9)]));
  opt.apply(grads, 1e-2);
  const profile = await tf.profile(() => { opt.apply(grads, 1e-2); });
  const names = profile.kernels.map((k) => k.name);
  assert.equal(names.filter((k) => k === 'Reshape').length, 2 * 2, names.join(' '));
  tf.dispose([...grads.values(), ...params.values()]);
  opt.dispose();
});
