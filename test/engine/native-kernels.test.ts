/**
 * The tensorflow backend's replaced kernels (engine/native-kernels.ts): the same values as
 * tfjs-node's own, no tensors or TensorFlow handles left behind, and no TensorFlow call where a
 * reshape or cast changes nothing. Skipped where the native backend is not built.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { embedding } from '../../engine/ops.ts';
import { CONSTANT_CACHE_SIZE, cachedConstantCount, registerNativeKernels, unregisterNativeKernels } from '../../engine/native-kernels.ts';

const native = await initBackend('tensorflow').then(() => true, () => false);
const skip = () => !native && 'no native backend (tensorflow) here';

/** Integer-valued data, so sums and means are exact whatever the order. */
function ramp(shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Array.from({ length: n }, (_, i) => ((i * 7) % 23) - 11), shape, dtype);
}

/** Every case: [label, computation]; each returns one tensor. */
const cases: Array<[string, () => tf.Tensor]> = [
  ['reshape', () => tf.reshape(ramp([4, 6]), [3, 8])],
  ['reshape with -1', () => tf.reshape(ramp([4, 6]), [2, -1, 3])],
  ['reshape int32', () => tf.reshape(ramp([4, 6], 'int32'), [24])],
  ['reshape bool', () => tf.reshape(tf.greater(ramp([4, 6]), 0), [6, 4])],
  ['reshape to the same shape', () => tf.reshape(ramp([4, 6]), [4, 6])],
  ['transpose', () => tf.transpose(ramp([2, 3, 4]), [2, 0, 1])],
  ['transpose int32', () => tf.transpose(ramp([3, 5], 'int32'))],
  ['sum over an axis', () => tf.sum(ramp([3, 4, 5]), 1)],
  ['sum keeping dims', () => tf.sum(ramp([3, 4, 5]), [0, 2], true)],
  ['sum of everything', () => tf.sum(ramp([3, 4]))],
  ['sum int32', () => tf.sum(ramp([3, 4], 'int32'), -1)],
  ['mean', () => tf.mean(ramp([4, 8]), -1, true)],
  ['mean int32 (tfjs-node casts it)', () => tf.mean(ramp([4, 8], 'int32'), 0)],
  ['max', () => tf.max(ramp([4, 5]), -1)],
  ['max keeping dims', () => tf.max(ramp([4, 5]), 0, true)],
  ['slice', () => tf.slice(ramp([4, 5, 6]), [1, 0, 2], [2, -1, 3])],
  ['slice 1-D', () => tf.slice(ramp([30]), 5, 10)],
  ['cast to the same dtype', () => tf.cast(ramp([3, 3]), 'float32')],
  ['cast to another dtype', () => tf.cast(ramp([3, 3]), 'int32')],
];

test('the replaced kernels give the values tfjs-node\'s own kernels give, bit for bit', { skip: skip() }, () => {
  const fast = cases.map(([, f]) => tf.tidy(() => { const t = f(); return { shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync()) }; }));
  unregisterNativeKernels();
  try {
    cases.forEach(([label, f], i) => {
      const want = tf.tidy(() => { const t = f(); return { shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync()) }; });
      assert.deepEqual(fast[i], want, label);
    });
  } finally {
    registerNativeKernels();
  }
});

test('a reshape to the same shape and a cast to the same dtype share their input\'s data', { skip: skip() }, () => {
  const x = ramp([4, 6]);
  const before = tf.memory().numTensors;
  const r = tf.reshape(x, [4, 6]);
  const c = tf.cast(x, 'float32');
  assert.equal(r.dataId, x.dataId);
  assert.equal(c.dataId, x.dataId);
  r.dispose();
  c.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(Array.from(x.dataSync()), Array.from(ramp([4, 6]).dataSync())); // x still intact
  x.dispose();
});

test('reshapes leave no tensors behind and their cached shape handles stay bounded', { skip: skip() }, () => {
  const x = ramp([8, 64]);
  const expected = Array.from(x.dataSync());
  const before = tf.memory().numTensors;
  for (let i = 0; i < 200; i++) tf.tidy(() => { tf.transpose(tf.reshape(tf.reshape(x, [64, 8]), [2, 4, 64]), [2, 1, 0]); });
  assert.equal(tf.memory().numTensors, before);
  // More distinct constants than the cache holds (each slice's begin is one): the oldest handles
  // go, and values stay right.
  const line = ramp([CONSTANT_CACHE_SIZE + 60]);
  const values = Array.from(line.dataSync());
  for (let b = 0; b < CONSTANT_CACHE_SIZE + 50; b++) {
    tf.tidy(() => { assert.deepEqual(Array.from(tf.slice(line, b, 10).dataSync()), values.slice(b, b + 10)); });
  }
  assert.ok(cachedConstantCount() <= CONSTANT_CACHE_SIZE, `cache holds ${cachedConstantCount()}`);
  line.dispose();
  tf.tidy(() => { assert.deepEqual(Array.from(tf.reshape(x, [64, 8]).dataSync()), expected); }); // evicted earlier, made again
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

test('the embedding gradient (UnsortedSegmentSum on tensorflow) adds the rows in order, as the host scatter-add does', { skip: skip() }, () => {
  const V = 40, C = 8, N = 3000;
  const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919) % V);
  const table = tf.randomNormal([V, C], 0, 1, 'float32', 1) as tf.Tensor2D;
  const idsT = tf.tensor1d(ids, 'int32');
  const dy = tf.randomNormal([N, C], 0, 1, 'float32', 2);
  const got = tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embedding(t as tf.Tensor2D, idsT), dy)))(table).dataSync());
  const d = dy.dataSync(), want = new Float32Array(V * C);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) want[ids[n] * C + c] += d[n * C + c];
  assert.deepEqual([...got], [...want]);
  tf.dispose([table, idsT, dy]);
});
