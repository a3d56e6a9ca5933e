/**
 * tokenLogProbs' kernels: the target logits are gathered (no one-hot without a gradient), the
 * one-hot is built only for the gradient and gets no gradient of its own (no [N, V] zeros), and
 * the gradient is (onehot - softmax) * dy. On every backend present of tensorflow, wasm and cpu.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend, type BackendName } from '../../engine/backend.ts';
import { tokenLogProbs } from '../../engine/loss.ts';
import { maxAbsDiff } from './tiny.ts';

const B = 2, T = 3, V = 7;
const logitsData = Array.from({ length: B * T * V }, (_, i) => Math.sin(i * 1.3) * 4);
const targetData = [3, 0, 6, 1, 5, 2];
const weightData = [1, 0.5, 0, 2, 1, -1];

async function kernelNames(f: () => void): Promise<string[]> {
  const p = await tf.profile(() => { tf.tidy(f); });
  return p.kernels.map((k) => k.name);
}

// Which backends are here, found before any test starts: node:test starts a test as soon as it is
// declared, and one selecting its backend while this loop selects another would race it.
const backends = ['tensorflow', 'wasm', 'cpu'] as BackendName[];
const present: boolean[] = [];
for (const backend of backends) present.push(await initBackend(backend).then(() => true, () => false));

for (const [i, backend] of backends.entries()) {
  test(`token log-probs on ${backend}: no one-hot without a gradient, no zeros for it with one, gradient (onehot - softmax) * dy`, { skip: !present[i] && `no ${backend} backend here` }, async () => {
    await initBackend(backend);
    const logits = tf.tensor3d(logitsData, [B, T, V]);
    const targets = tf.tensor2d(targetData, [B, T], 'int32');
    const weights = tf.tensor2d(weightData, [B, T]);

    const forward = await kernelNames(() => { tokenLogProbs(logits, targets); });
    assert.ok(!forward.includes('OneHot'), `forward kernels: ${forward.join(' ')}`);

    const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tokenLogProbs(x as tf.Tensor3D, targets), weights)));
    const withGradient = await kernelNames(() => { grad(logits); });
    assert.equal(withGradient.filter((k) => k === 'OneHot').length, 1, withGradient.join(' '));
    assert.ok(!withGradient.includes('ZerosLike'), withGradient.join(' '));

    // Expected, in double precision: log p and w * (onehot - softmax) per row.
    const want = new Float64Array(B * T * V), wantLp = new Float64Array(B * T);
    for (let n = 0; n < B * T; n++) {
      const row = logitsData.slice(n * V, n * V + V);
      const m = Math.max(...row);
      const z = row.reduce((s, x) => s + Math.exp(x - m), 0);
      wantLp[n] = row[targetData[n]] - m - Math.log(z);
      for (let v = 0; v < V; v++) want[n * V + v] = weightData[n] * ((v === targetData[n] ? 1 : 0) - Math.exp(row[v] - m) / z);
    }
    const lp = tf.tidy(() => tokenLogProbs(logits, targets));
    assert.ok(maxAbsDiff(lp.dataSync(), wantLp) < 1e-5, `log-probs off by ${maxAbsDiff(lp.dataSync(), wantLp)}`);
    const g = tf.tidy(() => grad(logits));
    assert.ok(maxAbsDiff(g.dataSync(), want) < 1e-6, `gradient off by ${maxAbsDiff(g.dataSync(), want)}`);
    tf.dispose([logits, targets, weights, lp, g]);
  });
}
