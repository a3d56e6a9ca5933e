import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { linearNoGrad, rmsNormNoGrad, ropeNoGrad, setFusedKernels, setRmsNormKernel, setRopeKernel, shiftedExp, swiGluNoGrad, wasmKernelsInPlace } from '../../engine/wasm-kernels.ts';
import { embedding, linear, matMulConst, recording, rmsNorm, rotateHalfMatrices, swiGlu } from '../../engine/ops.ts';
import { CausalLM } from '../../engine/model.ts';
import { generate } from '../../engine/generate.ts';
import { tinyConfig } from './tiny.ts';
import { Rng } from '../../common/rng.ts';

function random(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

/** Concatenation by its definition: each outer row is the inputs' inner rows one after another. */
function concatReference(parts: { data: ArrayLike<number>; shape: number[] }[], axis: number): number[] {
  const outer = parts[0].shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const inner = p.shape.slice(axis).reduce((a, b) => a * b, 1);
      for (let i = 0; i < inner; i++) out.push(p.data[o * inner + i]);
    }
  }
  return out;
}

test('on wasm, Concat, GatherV2 and Slice are the bulk-memory copies, and give what the definitions give', async () => {
  await initBackend('wasm');
  assert.equal(wasmKernelsInPlace(), true);
  // Every axis of rank-3 float32 tensors (a KV cache's append is axis 2), int32, negative axis, three inputs.
  const cases: [number[][], number, tf.DataType][] = [
    [[[64, 32, 7], [64, 32, 1]], 2, 'float32'],
    [[[64, 7, 32], [64, 1, 32]], 1, 'float32'],
    [[[3, 5, 4], [2, 5, 4], [1, 5, 4]], 0, 'float32'],
    [[[4, 3], [4, 5]], -1, 'int32'],
    [[[1, 9], [1, 2], [1, 1]], 1, 'float32'],
  ];
  cases.forEach(([shapes, axis, dtype], c) => {
    const datas = shapes.map((s, i) => dtype === 'int32' ? Int32Array.from(random(s, c * 10 + i), (x) => Math.round(x * 100)) : random(s, c * 10 + i));
    const ts = shapes.map((s, i) => tf.tensor(datas[i], s, dtype));
    const got = tf.concat(ts, axis);
    const ax = axis < 0 ? axis + shapes[0].length : axis;
    const want = concatReference(shapes.map((s, i) => ({ data: datas[i], shape: s })), ax);
    const outShape = shapes[0].slice();
    outShape[ax] = shapes.reduce((a, s) => a + s[ax], 0);
    assert.deepEqual(got.shape, outShape, `case ${c}`);
    assert.equal(got.dtype, dtype);
    assert.deepEqual(Array.from(got.dataSync()), want, `case ${c}: values`);
    tf.dispose([...ts, got]);
  });

  // An embedding lookup: rows of [V, C] by ids of any shape, repeated ids included.
  const V = 50, C = 12;
  const table = random([V, C], 7);
  const E = tf.tensor2d(table, [V, C]);
  const ids = [[3, 49, 0, 3], [7, 7, 1, 48]];
  const got = tf.gather(E, tf.tensor2d(ids, [2, 4], 'int32'));
  assert.deepEqual(got.shape, [2, 4, C]);
  assert.deepEqual(Array.from(got.dataSync()), ids.flat().flatMap((id) => Array.from(table.subarray(id * C, (id + 1) * C))));
  // An id outside the table is refused, as by the backend's own kernel.
  assert.throws(() => tf.gather(E, tf.tensor1d([2, 50], 'int32')), /index value 50 is not in \[0, 49\]/);
  assert.throws(() => tf.gather(E, tf.tensor1d([-1], 'int32')), /index value -1/);
  // A gather along another axis goes to the backend's own kernel, with the same meaning.
  const cols = tf.gather(E, tf.tensor1d([2, 0], 'int32'), 1);
  assert.deepEqual(Array.from(cols.dataSync()), Array.from({ length: V }, (_, r) => [table[r * C + 2], table[r * C]]).flat());
  tf.dispose([E, got, cols]);

  // Slices: every axis cut or whole, in any combination (the cache's re-forming cuts rows and
  // leading columns, attention's blocks cut positions).
  const shape = [3, 4, 5, 6];
  const data = random(shape, 99);
  const x = tf.tensor(data, shape);
  const strides = [120, 30, 6, 1];
  const cuts: [number[], number[]][] = [
    [[0, 0, 0, 0], [3, 4, 5, 6]], [[1, 0, 0, 0], [2, 4, 5, 6]], [[0, 0, 0, 2], [3, 4, 5, 3]],
    [[0, 1, 0, 0], [3, 2, 5, 6]], [[2, 3, 4, 5], [1, 1, 1, 1]], [[1, 1, 1, 1], [2, 3, 3, 4]],
    [[0, 2, 0, 1], [3, 1, 5, 5]], [[1, 0, 2, 0], [1, 4, 2, 6]], [[0, 0, 0, 0], [3, 4, 5, -1]],
  ];
  for (const [begin, size] of cuts) {
    const sz = size.map((n, i) => (n < 0 ? shape[i] - begin[i] : n));
    const want: number[] = [];
    for (let i = 0; i < sz[0]; i++) for (let j = 0; j < sz[1]; j++) for (let k = 0; k < sz[2]; k++) for (let l = 0; l < sz[3]; l++) {
      want.push(data[(begin[0] + i) * strides[0] + (begin[1] + j) * strides[1] + (begin[2] + k) * strides[2] + begin[3] + l]);
    }
    const got = tf.slice(x, begin, size);
    assert.deepEqual(got.shape, sz, `slice ${begin} ${size}`);
    assert.deepEqual(Array.from(got.dataSync()), want, `slice ${begin} ${size}`);
    got.dispose();
  }
  const ints = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32');
  assert.deepEqual(Array.from(tf.slice(ints, [0, 1], [2, 2]).dataSync()), [2, 3, 5, 6]);
  tf.dispose([x, ints]);
});

test('ShiftedExp on wasm: exp(x - row max) within float32 rounding, each row the same wherever it lies', async () => {
  await initBackend('wasm');
  // Row lengths with and without a tail of fewer than four lanes; values spread wide, some far below the max.
  for (const V of [1024, 37, 3, 4]) {
    const rows = 5;
    const data = random([rows, V], V);
    for (let i = 0; i < data.length; i += 7) data[i] *= 60;
    const x = tf.tensor2d(data, [rows, V]);
    const got = shiftedExp(x).dataSync();
    for (let r = 0; r < rows; r++) {
      let max = -Infinity;
      for (let i = 0; i < V; i++) max = Math.max(max, data[r * V + i]);
      for (let i = 0; i < V; i++) {
        const d = data[r * V + i] - max;
        const want = Math.exp(d);
        const g = got[r * V + i];
        // A few float32 ulps, plus what rounding x - max to float32 moves (|x - max| ulps of it);
        // below e^-87 the kernel gives 0.
        assert.ok(Math.abs(g - want) <= (4e-7 + Math.abs(d) * 6e-8) * want + 2e-38, `V=${V} row ${r} [${i}]: ${g} against ${want}`);
      }
      // The same row alone, at the start of its own tensor, gives the same bits.
      const alone = tf.tensor2d(data.subarray(r * V, (r + 1) * V), [1, V]);
      assert.deepEqual(Array.from(shiftedExp(alone).dataSync()), Array.from(got.subarray(r * V, (r + 1) * V)), `V=${V} row ${r} alone`);
      alone.dispose();
    }
    x.dispose();
  }
});

/** f's output computed while a gradient tape records (inside tf.variableGrads), kept. */
function underTape(f: () => tf.Tensor): tf.Tensor {
  const v = tf.variable(tf.scalar(1));
  let out: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    assert.equal(recording(), true, 'a tape records inside variableGrads');
    out = tf.keep(f());
    return tf.mul(tf.sum(out), v) as tf.Scalar;
  }, [v]);
  tf.dispose([v, value, ...Object.values(grads)]);
  return out!;
}

/**
 * A model decoding the same prompts with a kernel turned off (`turn(false)`), then on: the same
 * tokens and log-probabilities bit for bit. `check` looks at the model first.
 */
function decodesTheSame(turn: (on: boolean) => void, modelSeed: number, seed: number, prompts: number[][], check?: (m: CausalLM) => void): void {
  const model = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(modelSeed);
  check?.(model);
  const opts = { temperature: 0.8, maxNewTokens: 10, seed };
  turn(false);
  const without = generate(model, prompts, opts);
  turn(true);
  assert.deepEqual(generate(model, prompts, opts), without);
  model.dispose();
}

test('where no tape records, the rotary kernel on wasm and the building blocks without their custom gradients give the same values bit for bit', async () => {
  for (const backend of ['wasm', 'tensorflow', 'cpu'] as const) {
    if (!(await initBackend(backend).then(() => true, () => false))) continue;
    assert.equal(recording(), false);
    const x = tf.tensor2d(random([6, 12], 3), [6, 12]), w = tf.tensor2d(random([12, 8], 4), [12, 8]);
    const g = tf.tensor1d(random([12], 5)), u = tf.tensor2d(random([6, 12], 6), [6, 12]);
    const ids = tf.tensor2d([[3, 0, 5], [5, 1, 2]], [2, 3], 'int32');
    const { R, RT } = rotateHalfMatrices(12);
    const same = (f: () => tf.Tensor, what: string) => assert.deepEqual(f().dataSync(), underTape(f).dataSync(), `${what} on ${backend}`);
    same(() => linear(x, w), 'linear');
    same(() => rmsNorm(x, g, 1e-6), 'rmsNorm');
    same(() => swiGlu(x, u), 'swiGlu');
    same(() => embedding(u, ids), 'embedding');
    same(() => matMulConst(x, R, RT), 'matMulConst');
    tf.dispose([x, w, g, u, ids, R, RT]);
  }
  await initBackend('wasm');
  // Rows of 3 heads of d = 10 (d / 2 = 5: four lanes and a scalar tail) against the general path:
  // x * cos + (x @ R) * sin, R the rotate-half matrix.
  const N = 4, H = 3, d = 10;
  const x = tf.tensor2d(random([N, H * d], 7), [N, H * d]);
  const cos = tf.tensor(random([N, d], 8), [N, 1, d]), sin = tf.tensor(random([N, d], 9), [N, 1, d]);
  const { R, RT } = rotateHalfMatrices(d);
  const general = tf.add(tf.mul(tf.reshape(x, [N, H, d]), cos), tf.mul(tf.reshape(matMulConst(tf.reshape(x, [-1, d]) as tf.Tensor2D, R, RT), [N, H, d]), sin));
  const fused = ropeNoGrad(x, cos, sin, [N, H, d]);
  assert.ok(fused, 'the kernel serves wasm');
  assert.deepEqual(fused.shape, [N, H, d]);
  assert.deepEqual(fused.dataSync(), general.dataSync());
  assert.equal(underTape(() => ropeNoGrad(x, cos, sin, [N, H, d]) ?? tf.scalar(-1)).size, 1, 'under a tape, the caller runs the general path');
  setRopeKernel(false);
  assert.equal(ropeNoGrad(x, cos, sin, [N, H, d]), undefined, 'turned off, the caller runs the general path');
  // Decoding with both paths: the same tokens and log-probabilities bit for bit.
  decodesTheSame(setRopeKernel, 3, 2, [[5, 6, 7, 8], [9, 10], [11, 12, 13]]);
  tf.dispose([x, cos, sin, R, RT, general, fused]);
});

test('where no tape records, RMSNorm on wasm is one kernel with the six kernels\' roundings: the same values bit for bit, and the same decoding', async () => {
  await initBackend('wasm');
  // Rows of four-lane widths and with a scalar tail; values small, large and zero (a zero row's
  // scale is 1 / sqrt(eps)); the weights any sign.
  for (const [N, C, scale] of [[5, 128, 1], [9, 37, 40], [3, 3, 1e-4], [17, 896, 3]] as const) {
    const rng = new Rng(N * C);
    const xs = Float32Array.from({ length: N * C }, (_, i) => (i < C ? 0 : rng.normal() * scale * (rng.next() < 0.1 ? 30 : 1)));
    const x = tf.tensor2d(xs, [N, C]), w = tf.tensor1d(random([C], C));
    for (const eps of [1e-6, 1e-5]) {
      const fused = rmsNormNoGrad(x, w, eps);
      assert.ok(fused, 'the kernel serves wasm');
      assert.deepEqual(fused.dataSync(), rmsNorm(x, w, eps).dataSync(), `[${N}, ${C}] x ${scale}, eps ${eps}`);
      fused.dispose();
    }
    assert.equal(underTape(() => rmsNormNoGrad(x, w, 1e-6) ?? tf.scalar(-1)).size, 1, 'under a tape, the caller runs the general path');
    tf.dispose([x, w]);
  }
  setRmsNormKernel(false);
  const x = tf.tensor2d(random([2, 8], 1), [2, 8]), w = tf.tensor1d(random([8], 2));
  assert.equal(rmsNormNoGrad(x, w, 1e-6), undefined, 'turned off, the caller runs the general path');
  decodesTheSame(setRmsNormKernel, 4, 3, [[5, 6, 7, 8], [9, 10], [11, 12, 13]]);
  tf.dispose([x, w]);
});

test('where no tape records, a linear layer with its bias and residual, and SwiGLU\'s products, are one kernel each on wasm: the same values bit for bit, and the same decoding', async () => {
  await initBackend('wasm');
  // 1 and 3 rows (XNNPACK's product) and 6 and 33 (the engine's GEMM); N with a scalar tail or not.
  for (const [M, K, N] of [[1, 16, 24], [3, 7, 10], [6, 32, 64], [33, 20, 13]] as const) {
    const x = tf.tensor2d(random([M, K], M), [M, K]), w = tf.tensor2d(random([K, N], K), [K, N]);
    const b = tf.tensor1d(random([N], N)), r = tf.tensor2d(random([M, N], M + N), [M, N]);
    const cases: [string, tf.Tensor | undefined, tf.Tensor2D | undefined][] = [['plain', undefined, undefined], ['bias', b, undefined], ['residual', undefined, r], ['both', b, r]];
    for (const [what, bias, residual] of cases) {
      const fused = linearNoGrad(x, w, bias, residual);
      assert.ok(fused, 'the kernel serves wasm');
      let general: tf.Tensor = linear(x, w);
      if (bias) general = tf.add(general, bias);
      if (residual) general = tf.add(residual, general);
      assert.deepEqual(fused.dataSync(), general.dataSync(), `${what}, [${M}, ${K}] @ [${K}, ${N}]`);
    }
    const u = tf.tensor2d(random([M, N], 2 * M + N), [M, N]);
    assert.deepEqual(swiGluNoGrad(r, u)!.dataSync(), swiGlu(r, u).dataSync(), `swiGlu [${M}, ${N}]`);
    assert.equal(underTape(() => linearNoGrad(x, w, b, r) ?? tf.scalar(-1)).size, 1, 'under a tape, the caller runs the general path');
    assert.equal(underTape(() => swiGluNoGrad(r, u) ?? tf.scalar(-1)).size, 1, 'under a tape, the caller runs the general path');
    tf.dispose([x, w, b, r, u]);
  }
  // A model with biases on q, k and v (as Qwen2's), decoding with and without the kernels.
  decodesTheSame(setFusedKernels, 5, 4, [[5, 6, 7, 8], [9, 10], [11, 12, 13], [4, 4, 4, 4, 4, 4]], (model) => {
    assert.ok([...model.params.keys()].some((n) => n.endsWith('q_proj.bias')), 'the model has biases');
  });
});
