import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { causalLmLoss } from '../../engine/loss.ts';
import { AdamW } from '../../engine/optim.ts';
import { trainStep } from '../../engine/train.ts';
import { ParallelTrainer, shardBatches, trainThreads, type LmBatch } from '../../engine/parallel-train.ts';
import { maxAbsDiff, tinyConfig } from './tiny.ts';

before(async () => { await initBackend(); });

/** Right-padded rows of varied lengths with a prompt part that is not scored. */
function batchOf(seed: number, rows: number, T: number, vocab: number): LmBatch {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2147483648);
  const ids: number[][] = [], mask: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const len = 3 + (next() % (T - 2));
    const prompt = 1 + (next() % Math.max(1, len - 2));
    ids.push(Array.from({ length: T }, (_, t) => (t < len ? 1 + (next() % (vocab - 1)) : 0)));
    mask.push(Array.from({ length: T }, (_, t) => (t >= prompt && t < len ? 1 : 0)));
  }
  return { ids, mask };
}

test('shards split each micro-batch by rows, weight parts by scored tokens, and cut after the last scored one', () => {
  const b1: LmBatch = {
    ids: [[5, 6, 7, 0, 0], [5, 6, 7, 8, 9], [5, 6, 0, 0, 0], [5, 6, 7, 8, 0]],
    mask: [[0, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0]],
  };
  const b2: LmBatch = { ids: [[1, 2, 3], [4, 5, 6]], mask: [[0, 1, 1], [0, 0, 0]] };
  const shards = shardBatches([b1, b2], 2);
  // Micro-batch 1 has 2 + 3 + 0 + 3 = 8 scored tokens: rows 0-1 (5 tokens), rows 2-3 (3 tokens).
  // Micro-batch 2 has 2: all in row 0; the second shard's row scores nothing and is left out.
  assert.equal(shards.length, 2);
  assert.deepEqual(shards[0].map((p) => p.factor), [5 / 16, 2 / 4]);
  assert.deepEqual(shards[1].map((p) => p.factor), [3 / 16]);
  assert.deepEqual(shards[0][0].ids, [[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]]);
  assert.deepEqual(shards[1][0].ids, [[5, 6, 0, 0], [5, 6, 7, 8]], 'cut after position 3, the last scored');
  assert.deepEqual(shards[0][1], { ids: [[1, 2, 3]], mask: [[0, 1, 1]], factor: 0.5 });
  // The factors add up to 1: the weighted mean losses make the step's loss.
  const sum = shards.flat().reduce((a, p) => a + p.factor, 0);
  assert.ok(Math.abs(sum - 1) < 1e-12);
  // More shards than rows: the extra shards get nothing.
  assert.deepEqual(shardBatches([b2], 4).map((s) => s.length), [0, 1, 0, 0]);
  // Nothing scored anywhere: one part with factor 0 (a zero gradient, as trainStep gives).
  const none: LmBatch = { ids: [[1, 2]], mask: [[1, 0]] };
  assert.deepEqual(shardBatches([none], 2), [[{ ...none, factor: 0 }], []]);
});

test('a data-parallel step equals the one-thread step up to float rounding, and repeats exactly', async () => {
  const config = tinyConfig();
  const batches = [batchOf(3, 6, 12, config.vocab_size), batchOf(4, 5, 9, config.vocab_size)];
  const run = async (threads: number | 'reference') => {
    const model = new CausalLM(config).initRandom(17);
    const opt = new AdamW(model.params);
    const losses: number[] = [], norms: number[] = [];
    if (threads === 'reference') {
      for (let i = 0; i < 3; i++) {
        const r = trainStep(model, opt, batches, (m, b) => causalLmLoss(m, b.ids, b.mask), { lr: 1e-2, maxGradNorm: 1 });
        losses.push(r.loss);
        norms.push(r.gradNorm);
      }
    } else {
      const trainer = await ParallelTrainer.start(model, opt, threads);
      try {
        assert.equal(trainer.threads, threads);
        for (let i = 0; i < 3; i++) {
          const r = await trainer.step(batches, { lr: 1e-2, maxGradNorm: 1 });
          losses.push(r.loss);
          norms.push(r.gradNorm);
        }
      } finally {
        await trainer.close();
      }
    }
    const weights = model.getWeights();
    opt.dispose();
    model.dispose();
    return { losses, norms, weights };
  };
  const reference = await run('reference');
  const one = await run(1);
  const two = await run(2);
  const twoAgain = await run(2);
  const three = await run(3);
  for (const r of [one, two, three]) {
    r.losses.forEach((l, i) => assert.ok(Math.abs(l - reference.losses[i]) < 1e-5, `loss ${l} vs ${reference.losses[i]}`));
    // The gradient itself: its norm agrees to float rounding.
    r.norms.forEach((n, i) => assert.ok(Math.abs(n - reference.norms[i]) < 1e-5 * reference.norms[i], `gradient norm ${n} vs ${reference.norms[i]}`));
    // Adam divides by the gradient's running size, so for elements whose gradient is near zero a
    // rounding difference moves the update by a fraction of lr (1e-2): 2e-4 after 3 steps is far
    // below what a wrong weighting of the shards gives (of the order of lr).
    for (const [name, w] of reference.weights) {
      const d = maxAbsDiff(r.weights.get(name)!.data, w.data);
      assert.ok(d < 2e-4, `${name} differs by ${d}`);
    }
  }
  // Training moved the weights (the comparison above is not between untouched models).
  const start = new CausalLM(config).initRandom(17);
  assert.ok(maxAbsDiff(start.getWeights().get('model.embed_tokens.weight')!.data, two.weights.get('model.embed_tokens.weight')!.data) > 1e-3);
  start.dispose();
  // Same thread count, same bits.
  assert.deepEqual(twoAgain.losses, two.losses);
  for (const [name, w] of two.weights) assert.deepEqual(twoAgain.weights.get(name)!.data, w.data, name);
});

test('weights assigned from outside between steps reach the worker threads', async () => {
  const config = tinyConfig();
  const batch = batchOf(9, 4, 10, config.vocab_size);
  const model = new CausalLM(config).initRandom(5);
  const opt = new AdamW(model.params);
  const trainer = await ParallelTrainer.start(model, opt, 2);
  try {
    await trainer.step([batch], { lr: 1e-2 });
    // A checkpoint load: the weights of another model.
    model.setWeights(new CausalLM(config).initRandom(6).getWeights());
    const viaThreads = await trainer.step([batch], { lr: 0 });
    const fresh = new CausalLM(config).initRandom(6);
    const direct = tf.tidy(() => causalLmLoss(fresh, batch.ids, batch.mask).dataSync()[0]);
    fresh.dispose();
    assert.ok(Math.abs(viaThreads.loss - direct) < 1e-5, `loss ${viaThreads.loss} on the threads, ${direct} on the assigned weights`);
  } finally {
    await trainer.close();
    opt.dispose();
    model.dispose();
  }
});

test('a closed trainer refuses steps, and the thread count comes from DOCTOR_AGENT_TRAIN_THREADS', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(1);
  const opt = new AdamW(model.params);
  const trainer = await ParallelTrainer.start(model, opt, 2);
  await trainer.close();
  await assert.rejects(trainer.step([batchOf(1, 4, 8, 64)], { lr: 1e-3 }), /closed/);
  opt.dispose();
  model.dispose();
  const saved = process.env.DOCTOR_AGENT_TRAIN_THREADS;
  try {
    process.env.DOCTOR_AGENT_TRAIN_THREADS = '3';
    assert.equal(trainThreads(), 3);
    process.env.DOCTOR_AGENT_TRAIN_THREADS = 'two';
    assert.throws(() => trainThreads(), /DOCTOR_AGENT_TRAIN_THREADS=two is not a thread count/);
    delete process.env.DOCTOR_AGENT_TRAIN_THREADS;
    assert.ok(trainThreads() >= 1 && trainThreads() <= 4);
  } finally {
    if (saved === undefined) delete process.env.DOCTOR_AGENT_TRAIN_THREADS; else process.env.DOCTOR_AGENT_TRAIN_THREADS = saved;
  }
});
