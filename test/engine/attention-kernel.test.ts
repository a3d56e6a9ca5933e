import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { WASM_PATH, batchMatMul, hostBatchMatMul, kernelActive, setAttentionKernel, type Layout } from '../../engine/attention-kernel.ts';
import { assembleAttentionWasm } from '../../scripts/build-attention-wasm.ts';
import { Rng } from '../../common/rng.ts';

function random(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Largest difference relative to the reference's largest magnitude. */
function relDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

/** The product in float64 by the definition, for each operand layout. */
function reference(a: Float32Array, b: Float32Array, G: number, M: number, K: number, N: number, layout: Layout): Float64Array {
  const c = new Float64Array(G * M * N);
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = layout === 'tn' ? a[(g * K + k) * M + i] : a[(g * M + i) * K + k];
          const bv = layout === 'nt' ? b[(g * N + j) * K + k] : b[(g * K + k) * N + j];
          s += av * bv;
        }
        c[(g * M + i) * N + j] = s;
      }
    }
  }
  return c;
}

test('the committed attention.wasm is what attention.wat assembles to', async () => {
  const built = await assembleAttentionWasm();
  const committed = readFileSync(WASM_PATH);
  assert.ok(Buffer.from(built).equals(committed), 'engine/wasm/attention.wasm is stale: run `node --import tsx scripts/build-attention-wasm.ts`');
});

test('the kernel matches the definition for every layout, including column tails', () => {
  // N covers the 16-, 4- and 1-column paths; M and K odd.
  for (const [G, M, K, N] of [[3, 5, 7, 23], [2, 17, 32, 64], [1, 1, 1, 1], [4, 2, 9, 3]]) {
    for (const layout of ['nn', 'nt', 'tn'] as Layout[]) {
      const a = random(G * M * K, G * 1000 + N), b = random(G * K * N, M * 1000 + K);
      const got = hostBatchMatMul(a, b, G, M, K, N, layout).slice();
      assert.ok(relDiff(got, reference(a, b, G, M, K, N, layout)) < 1e-5, `${layout} G=${G} M=${M} K=${K} N=${N}`);
    }
  }
  assert.throws(() => hostBatchMatMul(new Float32Array(5), new Float32Array(6), 1, 2, 3, 2, 'nn'), /do not fit/);
});

test('rows computed in pairs are bit for bit the rows computed alone', () => {
  const [M, K, N] = [5, 33, 37];
  const a = random(M * K, 1), b = random(K * N, 2);
  const whole = hostBatchMatMul(a, b, 1, M, K, N, 'nn').slice();
  for (let i = 0; i < M; i++) {
    const row = hostBatchMatMul(a.slice(i * K, (i + 1) * K), b, 1, 1, K, N, 'nn');
    assert.deepEqual([...row], [...whole.subarray(i * N, (i + 1) * N)], `row ${i}`);
  }
});

for (const backend of ['wasm', 'cpu'] as const) {
  test(`batchMatMul and its gradients match tf.matMul on the ${backend} backend`, async () => {
    await initBackend(backend);
    setAttentionKernel(true);
    assert.equal(kernelActive(), true);
    const [G, M, K, N] = [6, 19, 32, 37];
    const a = tf.tensor3d(random(G * M * K, 1), [G, M, K]);
    const b = tf.tensor3d(random(G * K * N, 2), [G, K, N]);
    const dy = tf.tensor3d(random(G * M * N, 3), [G, M, N]);
    // A weighted sum, so the gradient of the product is dy.
    const loss = (mm: (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor3D) => (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x as tf.Tensor3D, y as tf.Tensor3D), dy));
    const ours = tf.tidy(() => [batchMatMul(a, b), ...tf.grads(loss(batchMatMul))([a, b])].map((t) => t.dataSync().slice()));
    const theirs = tf.tidy(() => [tf.matMul(a, b), ...tf.grads(loss((x, y) => tf.matMul(x, y)))([a, b])].map((t) => t.dataSync().slice()));
    ['forward', 'gradient of a', 'gradient of b'].forEach((what, i) => {
      assert.ok(relDiff(ours[i], theirs[i]) < 1e-5, `${what}: relative difference ${relDiff(ours[i], theirs[i])}`);
    });
    // Turned off, it is tf.matMul itself.
    setAttentionKernel(false);
    assert.equal(kernelActive(), false);
    assert.deepEqual(tf.tidy(() => batchMatMul(a, b).dataSync().slice()), theirs[0]);
    setAttentionKernel(true);
    assert.throws(() => batchMatMul(a, a), /do not multiply/);
    tf.dispose([a, b, dy]);
  });
}
