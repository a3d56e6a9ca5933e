import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { GEMM_WASM_PATH, gemmStats, gemmTakes, setWasmGemm, wasmGemmActive } from '../../engine/wasm-gemm.ts';
import { writeAlong } from '../../engine/wasm-kernels.ts';
import { loadConfig } from '../../engine/config.ts';
import { CausalLM } from '../../engine/model.ts';
import { assembleGemmWasm } from '../../scripts/build-attention-wasm.ts';
import { Rng } from '../../common/rng.ts';

function random(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** A @ B by its definition, in float64. */
function reference(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) {
    const x = a[i * K + k];
    for (let j = 0; j < N; j++) c[i * N + j] += x * b[k * N + j];
  }
  return c;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, K: number, what: string): void {
  assert.equal(got.length, want.length, what);
  // float32 sums of K products of unit normals: errors grow like sqrt(K) times the rounding.
  const tol = 1e-5 * Math.max(1, Math.sqrt(K)) * 4;
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])))) {
      assert.fail(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
    }
  }
}

test('the committed gemm.wasm is what gemm.wat assembles to', async () => {
  const built = await assembleGemmWasm();
  assert.ok(Buffer.from(built).equals(readFileSync(GEMM_WASM_PATH)), 'engine/wasm/gemm.wasm is stale: run `node --import tsx scripts/build-attention-wasm.ts`');
});

test('on wasm, plain products run on the kernel (panels packed on the way, then a kept packed copy) and match the definition', async () => {
  await initBackend('wasm');
  setWasmGemm(true);
  assert.equal(wasmGemmActive(), true, 'the relaxed-SIMD module should load in this Node');
  // Rows: blocks of 4 and the rows left over; K from 1; N from one panel to wide (4 KiB rows).
  for (const [M, K, N] of [[16, 1, 8], [17, 7, 24], [33, 128, 1024], [64, 384, 128], [5, 9, 16], [4, 3, 8]]) {
    const a = random(M * K, M * 100 + K), b = random(K * N, K * 100 + N);
    const want = reference(a, b, M, K, N);
    const ta = tf.tensor2d(a, [M, K]), tb = tf.tensor2d(b, [K, N]);
    const before = { ...gemmStats };
    const first = tf.matMul(ta, tb);
    assertClose(first.dataSync(), want, K, `[${M}, ${K}] @ [${K}, ${N}], first product`);
    assert.equal(gemmStats.panelProducts - before.panelProducts, 1, `the first product ${M}x${K}x${N} packs panels on the way`);
    const second = tf.matMul(ta, tb);
    // The kept copy is read by the same arithmetic: the same bits as the first product.
    assert.deepEqual(Array.from(second.dataSync()), Array.from(first.dataSync()), `[${M}, ${K}] @ [${K}, ${N}], packed`);
    assert.equal(gemmStats.packedProducts - before.packedProducts, 1, 'the second product reads the packed copy');
    assert.equal(gemmStats.packedBytes - before.packedBytes, K * N * 4, 'one packed copy of B is held');
    // A rank-3 product of one matrix each is the same plain product.
    const third = tf.tidy(() => tf.matMul(tf.reshape(ta, [1, M, K]) as tf.Tensor3D, tf.reshape(tb, [1, K, N]) as tf.Tensor3D));
    assert.deepEqual(third.shape, [1, M, N]);
    assert.deepEqual(Array.from(third.dataSync()), Array.from(second.dataSync()));
    tb.dispose();
    assert.equal(gemmStats.packedBytes, before.packedBytes, 'disposing B frees its packed copy');
    tf.dispose([ta, first, second, third]);
  }
});

test('on wasm, products the kernel does not take give exactly what XNNPACK gives', async () => {
  await initBackend('wasm');
  const cases: [number[], number[], boolean, boolean][] = [
    [[32, 16], [16, 12], false, false], // N not a multiple of 8
    [[2, 16, 8], [2, 8, 16], false, false], // a batch of matrices
    [[32, 16], [24, 16], false, true], // B transposed
    [[16, 32], [16, 24], true, false], // A transposed
  ];
  for (const [sa, sb, tA, tB] of cases) {
    const a = tf.tensor(random(sa.reduce((x, y) => x * y), 1), sa), b = tf.tensor(random(sb.reduce((x, y) => x * y), 2), sb);
    const before = { ...gemmStats };
    setWasmGemm(true);
    const ours = [tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, tA, tB), tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, tA, tB)];
    assert.equal(gemmStats.packedProducts + gemmStats.panelProducts, before.packedProducts + before.panelProducts, `${sa} @ ${sb} left to XNNPACK`);
    setWasmGemm(false);
    const theirs = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, tA, tB);
    setWasmGemm(true);
    for (const t of ours) assert.deepEqual(Array.from(t.dataSync()), Array.from(theirs.dataSync()));
    tf.dispose([a, b, theirs, ...ours]);
  }
  assert.equal(gemmTakes(1, 128, 384), true);
  assert.equal(gemmTakes(4, 128, 384), true);
  assert.equal(gemmTakes(4, 128, 380), false, 'N not a multiple of 8');
  assert.equal(gemmTakes(32, 4096, 4096), false, 'B over 16 MiB');
});

test('on wasm, a reshape of a packed B (the same data, another shape) is not read through the old packing', async () => {
  await initBackend('wasm');
  setWasmGemm(true);
  const b = random(8 * 16, 8);
  const tb = tf.tensor2d(b, [8, 16]);
  const a1 = random(16 * 8, 9), a2 = random(16 * 16, 10);
  const ta1 = tf.tensor2d(a1, [16, 8]), ta2 = tf.tensor2d(a2, [16, 16]);
  tf.dispose([tf.matMul(ta1, tb), tf.matMul(ta1, tb)]);
  const view = tf.reshape(tb, [16, 8]) as tf.Tensor2D;
  for (let i = 0; i < 2; i++) {
    const got = tf.matMul(ta2, view);
    assertClose(got.dataSync(), reference(a2, b, 16, 16, 8), 16, `[16, 16] @ the [16, 8] view, product ${i + 1}`);
    got.dispose();
  }
  const again = tf.matMul(ta1, tb);
  assertClose(again.dataSync(), reference(a1, b, 16, 8, 16), 8, 'the [8, 16] shape again');
  tf.dispose([tb, view, ta1, ta2, again]);
});

test('on wasm, a B written in place is packed again (no stale copy)', async () => {
  await initBackend('wasm');
  setWasmGemm(true);
  const M = 16, K = 8, N = 16;
  const a = random(M * K, 5), b = random(K * N, 6);
  const ta = tf.tensor2d(a, [M, K]), tb = tf.tensor2d(b, [K, N]);
  tf.dispose([tf.matMul(ta, tb), tf.matMul(ta, tb)]);
  // Rows 2..4 of B replaced in place.
  const rows = random(3 * N, 7);
  writeAlong(tb, tf.tensor2d(rows, [3, N]), 0, 3, 2);
  b.set(rows, 2 * N);
  const got = tf.matMul(ta, tb);
  assertClose(got.dataSync(), reference(a, b, M, K, N), K, 'after the in-place write');
  tf.dispose([ta, tb, got]);
});

test('on wasm, a model gives the same logits with the kernel as with XNNPACK, to float32 rounding', async () => {
  await initBackend('wasm');
  const model = new CausalLM(loadConfig(join(import.meta.dirname, '../../configs/tiny.json'))).initRandom(3);
  const ids = tf.tensor2d(Array.from({ length: 4 * 24 }, (_, i) => (i * 37) % 1000), [4, 24], 'int32');
  const logits = (on: boolean) => {
    setWasmGemm(on);
    const before = gemmStats.packedProducts + gemmStats.panelProducts;
    const out = model.forward(ids);
    const used = gemmStats.packedProducts + gemmStats.panelProducts - before;
    const data = out.dataSync();
    out.dispose();
    return { data, used };
  };
  logits(true);
  const ours = logits(true), theirs = logits(false);
  setWasmGemm(true);
  assert.ok(ours.used > 0 && theirs.used === 0, `kernel products: ${ours.used} on, ${theirs.used} off`);
  let worst = 0;
  for (let i = 0; i < ours.data.length; i++) worst = Math.max(worst, Math.abs(ours.data[i] - theirs.data[i]));
  assert.ok(worst < 1e-4, `largest logit difference ${worst}`);
  ids.dispose();
  model.dispose();
});

test('on wasm, each row of a product is what it is alone: the same arithmetic whatever the rows beside it', async () => {
  await initBackend('wasm');
  setWasmGemm(true);
  const K = 48, N = 40, M = 7;
  const a = random(M * K, 5), bData = random(K * N, 6);
  tf.tidy(() => {
    const b = tf.tensor2d(bData, [K, N]);
    // The whole product twice (the second reads the packed copy), then each row alone and in pairs.
    const whole = tf.matMul(tf.tensor2d(a, [M, K]), b).dataSync();
    assert.deepEqual(Array.from(tf.matMul(tf.tensor2d(a, [M, K]), b).dataSync()), Array.from(whole));
    for (let i = 0; i < M; i++) {
      const alone = tf.matMul(tf.tensor2d(a.slice(i * K, (i + 1) * K), [1, K]), b).dataSync();
      assert.deepEqual(Array.from(alone), Array.from(whole.slice(i * N, (i + 1) * N)), `row ${i}`);
    }
    const pair = tf.matMul(tf.tensor2d(a.slice(2 * K, 4 * K), [2, K]), b).dataSync();
    assert.deepEqual(Array.from(pair), Array.from(whole.slice(2 * N, 4 * N)));
  });
});
