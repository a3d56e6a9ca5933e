import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { causalLmLoss, maskedCrossEntropy, sequenceLogProbs, maskedTokenLogProbs, tokenLogProbs } from '../../engine/loss.ts';
import { AdamW, isDecayed } from '../../engine/optim.ts';
import { warmupCosineLr, warmupFromRatio } from '../../engine/schedule.ts';
import { accumulateGradients, clipByGlobalNorm, globalNorm, trainStep } from '../../engine/train.ts';
import { generate } from '../../engine/generate.ts';
import { maxAbsDiff, tinyConfig } from './tiny.ts';

before(async () => { await initBackend(); });

type Batch = { ids: number[][]; mask: number[][] };
const lossOf = (m: CausalLM, b: Batch) => causalLmLoss(m, b.ids, b.mask);

test('masked cross-entropy on hand-computed logits', () => {
  // Row 0: log-softmax([0, ln 3]) = [ln 1/4, ln 3/4]; targets 1 then 0; only the first is weighted.
  const logits = tf.tensor3d([[[0, Math.log(3)], [0, 0]]]);
  const loss = maskedCrossEntropy(logits, tf.tensor2d([[1, 0]], [1, 2], 'int32'), tf.tensor2d([[1, 0]]));
  assert.ok(Math.abs(loss.dataSync()[0] - -Math.log(0.75)) < 1e-6);
  const both = maskedCrossEntropy(logits, tf.tensor2d([[1, 0]], [1, 2], 'int32'), tf.tensor2d([[1, 1]]));
  assert.ok(Math.abs(both.dataSync()[0] - (-Math.log(0.75) + Math.log(2)) / 2) < 1e-6);
});

test('token log-probs stay exact for very unlikely tokens (no underflow)', () => {
  const lp = tokenLogProbs(tf.tensor3d([[[0, 200, -300], [5, 5, 5]]]), tf.tensor2d([[2, 1]], [1, 2], 'int32')).dataSync();
  assert.ok(Math.abs(lp[0] - -500) < 1e-3, `got ${lp[0]}`);
  assert.ok(Math.abs(lp[1] - -Math.log(3)) < 1e-6);
});

test('sequence log-probs sum the masked tokens and match the per-token values', () => {
  const m = new CausalLM(tinyConfig()).initRandom(51);
  const ids = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]];
  const mask = [[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]];
  const per = maskedTokenLogProbs(m, ids, mask).arraySync() as number[][];
  const logp = tf.logSoftmax(m.forward(tf.tensor2d(ids, [2, 5], 'int32'))).arraySync() as number[][][];
  for (let b = 0; b < 2; b++) for (let t = 0; t < 5; t++) {
    const expected = t > 0 && mask[b][t] ? logp[b][t - 1][ids[b][t]] : 0;
    assert.ok(Math.abs(per[b][t] - expected) < 1e-5, `[${b}][${t}]`);
  }
  const seq = sequenceLogProbs(m, ids, mask).arraySync() as number[];
  assert.ok(Math.abs(seq[0] - (per[0][2] + per[0][3] + per[0][4])) < 1e-5);
  assert.ok(Math.abs(seq[1] - (per[1][1] + per[1][2])) < 1e-5);
  m.dispose();
});

test('warmup + cosine schedule at hand-computed points', () => {
  const s = { peakLr: 1e-3, warmupSteps: 10, totalSteps: 110 };
  assert.equal(warmupCosineLr(0, s), 0);
  assert.ok(Math.abs(warmupCosineLr(5, s) - 5e-4) < 1e-12);
  assert.ok(Math.abs(warmupCosineLr(10, s) - 1e-3) < 1e-12);
  assert.ok(Math.abs(warmupCosineLr(60, s) - 5e-4) < 1e-12); // halfway: cos(pi/2) = 0
  assert.ok(Math.abs(warmupCosineLr(35, s) - 1e-3 * 0.5 * (1 + Math.SQRT1_2)) < 1e-12); // a quarter: cos(pi/4)
  assert.ok(Math.abs(warmupCosineLr(110, s)) < 1e-15);
  assert.ok(Math.abs(warmupCosineLr(110, { ...s, minLr: 1e-4 }) - 1e-4) < 1e-15);
  assert.ok(Math.abs(warmupCosineLr(60, { ...s, minLr: 1e-4 }) - 5.5e-4) < 1e-12);
  assert.equal(warmupFromRatio(1000, 0.05), 50);
});

test('AdamW: hand-computed first steps, decay only on matrices', () => {
  const w = tf.variable(tf.tensor2d([[1, -2]]), true, 'adamw-test-w');
  const b = tf.variable(tf.tensor1d([0.5]), true, 'adamw-test-b');
  const norm = tf.variable(tf.tensor1d([1]), true, 'adamw-test-norm');
  const params = new Map<string, tf.Variable>([['x.weight', w], ['x.bias', b], ['model.norm.weight', norm]]);
  const opt = new AdamW(params, { weightDecay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  assert.deepEqual(opt.decayedNames(), ['x.weight']);
  assert.equal(isDecayed('model.layers.0.input_layernorm.weight', [32]), false);
  assert.equal(isDecayed('model.embed_tokens.weight', [10, 4]), true);
  const lr = 0.01;
  const g = new Map<string, tf.Tensor>([['x.weight', tf.tensor2d([[0.5, 0.5]])], ['x.bias', tf.tensor1d([-1])], ['model.norm.weight', tf.tensor1d([0])]]);
  opt.apply(g, lr);
  // Step 1: m = 0.1 g, v = 0.001 g^2, m_hat/sqrt(v_hat) = sign(g) (up to eps); decay multiplies by 1 - lr*wd = 0.999.
  const w1 = w.dataSync();
  assert.ok(Math.abs(w1[0] - (1 * 0.999 - 0.01)) < 1e-6);
  assert.ok(Math.abs(w1[1] - (-2 * 0.999 - 0.01)) < 1e-6);
  assert.ok(Math.abs(b.dataSync()[0] - (0.5 + 0.01)) < 1e-6); // no decay on the bias
  assert.ok(Math.abs(norm.dataSync()[0] - 1) < 1e-7); // zero gradient, no decay: unchanged
  // Step 2 with the same gradient, computed from the formula in float64.
  opt.apply(g, lr);
  const m2 = 0.9 * 0.05 + 0.1 * 0.5, v2 = 0.999 * 0.00025 + 0.001 * 0.25;
  const upd = (m2 / (1 - 0.81)) / (Math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8);
  assert.ok(Math.abs(w.dataSync()[0] - ((1 * 0.999 - 0.01) * 0.999 - lr * upd)) < 1e-6);
  assert.equal(opt.step, 2);
});

test('clipping scales to the maximum global norm and leaves small gradients alone', () => {
  const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor2d([[0, 4]])]]);
  assert.equal(globalNorm(grads), 5);
  const before = clipByGlobalNorm(grads, 1);
  assert.equal(before, 5);
  assert.ok(Math.abs(grads.get('a')!.dataSync()[0] - 3 / (5 + 1e-6)) < 1e-6);
  assert.ok(Math.abs(globalNorm(grads) - 1) < 1e-5);
  const small = new Map<string, tf.Tensor>([['a', tf.tensor1d([0.3, 0.4])]]);
  clipByGlobalNorm(small, 1);
  assert.deepEqual([...small.get('a')!.dataSync()], [Math.fround(0.3), Math.fround(0.4)]);
});

test('two accumulated micro-batches of 1 give the gradient of one batch of 2', () => {
  const m = new CausalLM(tinyConfig()).initRandom(52);
  const rows = [[1, 2, 3, 4, 5, 6], [9, 8, 7, 6, 5, 4]];
  const masks = [[0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]].map((r) => r.map(() => 1)); // equal token counts
  const together = accumulateGradients(m, [{ ids: rows, mask: masks }], lossOf);
  const split = accumulateGradients(m, [{ ids: [rows[0]], mask: [masks[0]] }, { ids: [rows[1]], mask: [masks[1]] }], lossOf);
  assert.ok(Math.abs(together.loss - split.loss) < 1e-5);
  for (const [name, g] of together.grads) {
    assert.ok(maxAbsDiff(g.dataSync(), split.grads.get(name)!.dataSync()) < 1e-5, name);
  }
  for (const g of [...together.grads.values(), ...split.grads.values()]) g.dispose();
  m.dispose();
});

test('training memorises a tiny sequence, with a flat tensor count', () => {
  const m = new CausalLM(tinyConfig()).initRandom(53);
  const opt = new AdamW(m.params, { weightDecay: 0.01 });
  const seq = [3, 17, 42, 8, 23, 5, 61, 30, 12, 9, 50, 2];
  const batch: Batch = { ids: [seq], mask: [seq.map(() => 1)] };
  const losses: number[] = [];
  const counts: number[] = [];
  for (let step = 0; step < 40; step++) {
    const lr = warmupCosineLr(step, { peakLr: 1e-2, warmupSteps: 4, totalSteps: 40 });
    losses.push(trainStep(m, opt, [batch], lossOf, { lr, maxGradNorm: 1 }).loss);
    counts.push(tf.memory().numTensors);
  }
  assert.ok(losses[0] > 3.5, `initial loss ${losses[0]}`);
  assert.ok(losses[39] < 0.3, `final loss ${losses[39]}`);
  assert.deepEqual(new Set(counts.slice(1)).size, 1, `tensor counts ${counts.join(',')}`);
  // It now continues the sequence from its first token.
  const out = generate(m, [seq.slice(0, 1)], { maxNewTokens: seq.length - 1, temperature: 0 });
  assert.deepEqual(out.tokens[0], seq.slice(1));
  opt.dispose();
  m.dispose();
});

test('optimizer state saves and loads for an exact resume', () => {
  const dir = mkdtempSync(join(tmpdir(), 'optim-test-'));
  const batch: Batch = { ids: [[4, 8, 15, 16, 23, 42]], mask: [[1, 1, 1, 1, 1, 1]] };
  const run = (m: CausalLM, opt: AdamW, steps: number) => { for (let i = 0; i < steps; i++) trainStep(m, opt, [batch], lossOf, { lr: 5e-3 }); };
  const a = new CausalLM(tinyConfig()).initRandom(54);
  const optA = new AdamW(a.params);
  run(a, optA, 2);
  const weights = a.getWeights();
  optA.save(join(dir, 'optimizer.safetensors'));
  run(a, optA, 2);

  const b = new CausalLM(tinyConfig());
  b.setWeights(weights);
  const optB = new AdamW(b.params);
  optB.load(join(dir, 'optimizer.safetensors'));
  assert.equal(optB.step, 2);
  run(b, optB, 2);
  for (const [name, w] of a.getWeights()) assert.deepEqual(b.getWeights().get(name)!.data, w.data, name);

  const other = new CausalLM(tinyConfig({ hidden_size: 16 }));
  assert.throws(() => new AdamW(other.params).load(join(dir, 'optimizer.safetensors')), /has shape \[.*\], expected \[.*\]/);
});

/** The per-parameter update AdamW's flat one replaces, kernel for kernel the same arithmetic. */
function referenceAdamW(params: Map<string, tf.Variable>, wd: number) {
  const m = new Map<string, tf.Tensor>([...params].map(([n, p]) => [n, tf.zerosLike(p)]));
  const v = new Map<string, tf.Tensor>([...params].map(([n, p]) => [n, tf.zerosLike(p)]));
  let step = 0;
  return (grads: Map<string, tf.Tensor>, lr: number) => {
    step += 1;
    const bc1 = 1 - 0.9 ** step, bc2 = 1 - 0.999 ** step;
    for (const [name, p] of params) {
      const g = grads.get(name);
      if (!g) continue;
      const m1 = tf.add(tf.mul(m.get(name)!, 0.9), tf.mul(g, 1 - 0.9));
      const v1 = tf.add(tf.mul(v.get(name)!, 0.999), tf.mul(tf.square(g), 1 - 0.999));
      const denom = tf.add(tf.div(tf.sqrt(v1), Math.sqrt(bc2)), 1e-8);
      const decayed = isDecayed(name, p.shape) ? tf.mul(p, 1 - lr * wd) : p;
      p.assign(tf.sub(decayed, tf.mul(tf.div(m1, denom), lr / bc1)));
      m.set(name, m1);
      v.set(name, v1);
    }
  };
}

function randomParams(prefix: string, layers: number, seed: number): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (let i = 0; i < layers; i++) {
    params.set(`l${i}.proj.weight`, tf.variable(tf.randomNormal([5, 3], 0, 1, 'float32', seed + i), true, `${prefix}-w${i}`));
    params.set(`l${i}.proj.bias`, tf.variable(tf.randomNormal([3], 0, 1, 'float32', seed + 100 + i), true, `${prefix}-b${i}`));
    params.set(`l${i}.norm.weight`, tf.variable(tf.randomNormal([5], 0, 1, 'float32', seed + 200 + i), true, `${prefix}-n${i}`));
  }
  return params;
}

test('AdamW updates every parameter in the same few kernels whatever their count, with the per-parameter results', async () => {
  const kernelsOfStep = async (layers: number) => {
    const params = randomParams(`adamw-count-${layers}`, layers, 1);
    const opt = new AdamW(params, { weightDecay: 0.1 });
    const grads = new Map([...params].map(([n, p]) => [n, tf.randomNormal(p.shape, 0, 1, 'float32', 7)]));
    opt.apply(grads, 1e-2); // the first step gathers the parameters
    const profile = await tf.profile(() => { opt.apply(grads, 1e-2); });
    // Reshapes (one per parameter into and out of the flat vector) are views on most backends.
    const kernels = profile.kernels.filter((k) => k.name !== 'Reshape' && k.name !== 'Identity').length;
    tf.dispose([...grads.values(), ...params.values()]);
    opt.dispose();
    return kernels;
  };
  const few = await kernelsOfStep(2), many = await kernelsOfStep(20);
  assert.equal(many, few, `${few} kernels for 6 parameters, ${many} for 60`);
  assert.ok(few <= 20, `${few} kernels`);

  // The same values, bit for bit, as updating parameter by parameter (one has no gradient: skipped).
  const a = randomParams('adamw-ref-a', 3, 11), b = randomParams('adamw-ref-b', 3, 11);
  const opt = new AdamW(a, { weightDecay: 0.1 });
  const reference = referenceAdamW(b, 0.1);
  for (let step = 0; step < 3; step++) {
    const grads = new Map([...a].filter(([n]) => n !== 'l1.proj.bias').map(([n, p]) => [n, tf.randomNormal(p.shape, 0, 1, 'float32', 20 + step)]));
    opt.apply(grads, 1e-2 * (step + 1));
    reference(grads, 1e-2 * (step + 1));
    tf.dispose([...grads.values()]);
  }
  for (const [name, p] of a) assert.deepEqual([...p.dataSync()], [...b.get(name)!.dataSync()], name);
  const dir = mkdtempSync(join(tmpdir(), 'adamw-skip-'));
  opt.save(join(dir, 's.safetensors'));
  const { openSafetensors } = await import('../../engine/safetensors.ts');
  const f = openSafetensors(join(dir, 's.safetensors'));
  assert.deepEqual([...f.read('l1.proj.bias.exp_avg')], [0, 0, 0], 'a parameter without gradients keeps its moments');
  assert.notDeepEqual([...f.read('l0.proj.bias.exp_avg')], [0, 0, 0]);
  f.close();
});

test('on the tensorflow backend a training step transposes only inside attention and runs attention as one block', async (t) => {
  if (tf.getBackend() !== 'tensorflow') return t.skip('the native backend is not in use');
  const m = new CausalLM(tinyConfig()).initRandom(60);
  const opt = new AdamW(m.params);
  const batch: Batch = { ids: [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]], mask: [[0, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1, 1, 1]] };
  trainStep(m, opt, [batch], lossOf, { lr: 1e-3 });
  const profile = await tf.profile(() => { trainStep(m, opt, [batch], lossOf, { lr: 1e-3 }); });
  const count = (name: string) => profile.kernels.filter((k) => k.name === name).length;
  // Per layer: queries, keys and values into heads and the heads back out, forward and backward.
  assert.equal(count('Transpose'), 8 * 2);
  assert.equal(count('Softmax'), 2 + 1, 'one attention block per layer, and the loss');
  opt.dispose();
  m.dispose();
});
