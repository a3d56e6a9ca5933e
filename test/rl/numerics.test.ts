/**
 * RL numerics as TRL's: every log-prob (old, reference, new) at the sampling temperature, the
 * logits divided by temperature + 1e-7; the learning rate warmed up and decayed linearly over the
 * iterations, one scheduler step per iteration, as transformers' "linear" schedule.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { saveModel } from '../../engine/checkpoint.ts';
import { parseConfig } from '../../engine/config.ts';
import { maskedTokenLogProbs } from '../../engine/loss.ts';
import { CausalLM } from '../../engine/model.ts';
import { scheduledLr, warmupLinearLr } from '../../engine/schedule.ts';
import { scoringTemperature, tokenLogProbs } from '../../rl/batch.ts';
import { rlLearningRate, runRl, type Algorithm, type RlOptions, type UpdateInput } from '../../rl/loop.ts';
import { GrpoParams } from '../../dsl/kinds/grpo.ts';
import { PpoParams } from '../../dsl/kinds/ppo.ts';
import { HUATUO_REWARD } from '../../data/reward.ts';
import { recordingContext } from '../data/job-ctx.ts';
import { tinyConfig } from '../engine/tiny.ts';
import { tempDir } from '../train/helpers.ts';

before(async () => { await initBackend(); });

/**
 * One layer whose attention and MLP weights are all zero, so each position's hidden state is its
 * own embedding; the final RMSNorm (weight 1) and the tied head then give logits by hand:
 *   embeddings e0 = [1, 1], e1 = [1, -1], e2 = [2, 1]
 *   after token 0: rms(e0) . E^T = [2, 0, 3] / sqrt(1 + 1e-6)
 *   after token 2: rms(e2) . E^T = [3, 1, 5] / sqrt(2.5 + 1e-6)
 */
function handModel(): CausalLM {
  const m = new CausalLM(parseConfig({
    model_type: 'qwen2', vocab_size: 3, hidden_size: 2, intermediate_size: 2, num_hidden_layers: 1,
    num_attention_heads: 1, num_key_value_heads: 1, rms_norm_eps: 1e-6, tie_word_embeddings: true,
  }));
  m.setWeights(new Map([['model.embed_tokens.weight', { shape: [3, 2], data: Float32Array.from([1, 1, 1, -1, 2, 1]) }]]));
  return m;
}

test('token log-probs at the sampling temperature: logits divided by temperature + 1e-7, on hand-computed numbers', () => {
  const m = handModel();
  const ids = [[0, 2, 1]], mask = [[0, 1, 1]];
  const at = (temperature?: number) => (maskedTokenLogProbs(m, ids, mask, temperature === undefined ? {} : { temperature }).arraySync() as number[][])[0];
  // Temperature 1: log softmax([2, 0, 3])[2] = 3 - log(e^2 + 1 + e^3); log softmax([3, 1, 5] / 1.58114)[1].
  const t1 = at();
  assert.equal(t1[0], 0);
  assert.ok(Math.abs(t1[1] - -0.3490124) < 1e-5, `${t1[1]}`);
  assert.ok(Math.abs(t1[2] - -2.8387301) < 1e-5, `${t1[2]}`);
  // Temperature 0.5 as TRL divides: by 0.5 + 1e-7.
  assert.equal(scoringTemperature(0.5), 0.5 + 1e-7);
  const t05 = at(scoringTemperature(0.5));
  assert.ok(Math.abs(t05[1] - -0.1291091) < 1e-5, `${t05[1]}`);
  assert.ok(Math.abs(t05[2] - -5.1421629) < 1e-5, `${t05[2]}`);
  // rl/batch.ts's chunked table gives the same numbers.
  const table = tokenLogProbs(m, { ids, mask }, scoringTemperature(0.5));
  assert.ok(Math.abs(table[0][1] - t05[1]) < 1e-7 && Math.abs(table[0][2] - t05[2]) < 1e-7);
  assert.throws(() => maskedTokenLogProbs(m, ids, mask, { temperature: 0 }), /temperature must be a positive number/);
  m.dispose();
});

test('the temperature-scaled log-prob has the gradient of log softmax(x / T)', () => {
  const m = handModel();
  const E = m.params.get('model.embed_tokens.weight')!;
  const { grads } = tf.variableGrads(() => tf.sum(maskedTokenLogProbs(m, [[0, 2]], [[0, 1]], { temperature: 0.5 })) as tf.Scalar, [E]);
  const analytic = (grads[E.name].arraySync() as number[][])[0][0];
  // Finite differences on e0[0] (the embedding of the context token and a column of the head).
  const base = E.arraySync() as number[][];
  const f = (d: number) => {
    const e = base.map((r) => [...r]);
    e[0][0] += d;
    E.assign(tf.tensor2d(e));
    return (maskedTokenLogProbs(m, [[0, 2]], [[0, 1]], { temperature: 0.5 }).arraySync() as number[][])[0][1];
  };
  const fd = (f(1e-3) - f(-1e-3)) / 2e-3;
  assert.ok(Math.abs(fd - analytic) < 2e-3, `finite difference ${fd} vs gradient ${analytic}`);
  m.dispose();
});

test('the linear schedule with warmup: transformers\' numbers, and the recipe\'s 157 iterations with 5% warmup', () => {
  const s = { peakLr: 1e-3, warmupSteps: 2, totalSteps: 10 };
  assert.deepEqual([0, 1, 2, 6, 10, 12].map((k) => +warmupLinearLr(k, s).toPrecision(12)), [0, 5e-4, 1e-3, 5e-4, 0, 0]);
  assert.equal(scheduledLr('constant', 0, s), 1e-3);
  assert.equal(scheduledLr('constant_with_warmup', 1, s), 5e-4);
  assert.equal(scheduledLr('constant_with_warmup', 7, s), 1e-3);
  assert.ok(Math.abs(scheduledLr('cosine', 6, s) - 5e-4) < 1e-15);
  // 20,000 episodes in batches of 128: 157 iterations, ceil(157 * 0.05) = 8 of warmup.
  const recipe = { learning_rate: 5e-7, lr_scheduler_type: 'linear' as const, warmup_ratio: 0.05, iterations: 157 };
  assert.equal(rlLearningRate(0, recipe), 0);
  assert.ok(Math.abs(rlLearningRate(4, recipe) - 2.5e-7) < 1e-20);
  assert.equal(rlLearningRate(8, recipe), 5e-7);
  assert.ok(Math.abs(rlLearningRate(156, recipe) - 5e-7 / 149) < 1e-20);
});

test('the RL kinds default to the recipe: linear schedule, 5% warmup, lr 5e-7, temperature 0.5', () => {
  const base = { policy: 'p', data: 'd', verifier: { type: 'rule' } };
  for (const p of [GrpoParams.parse(base), PpoParams.parse(base)]) {
    assert.equal(p.lr_scheduler_type, 'linear');
    assert.equal(p.warmup_ratio, 0.05);
    assert.equal(p.learning_rate, 5e-7);
    assert.equal(p.temperature, 0.5);
  }
});

test('an RL run hands the update the scheduled lr and log-probs taken at temperature + 1e-7', async () => {
  const dir = tempDir('rl-numerics');
  const policy = join(dir, 'policy');
  const model = new CausalLM(tinyConfig({ vocab_size: 1024 })).initRandom(3);
  await saveModel(model, policy, { tokenizerDir: 'test/fixtures/parity/tokenizer' });
  const data = join(dir, 'verifiable.json');
  writeFileSync(data, JSON.stringify([{ 'Open-ended Verifiable Question': 'Which organ fails?', 'Ground-True Answer': 'heart' }]));
  const p: RlOptions = {
    policy, data, verifier: { type: 'rule' }, temperature: 0.5, top_p: 1, response_length: 5, learning_rate: 1e-3,
    lr_scheduler_type: 'linear', warmup_ratio: 0.5, iterations: 4, max_prompt_len: 64, reward: { ...HUATUO_REWARD }, seed: 2,
    save_every: 100, save_every_minutes: 0,
  };
  const seen: UpdateInput[] = [];
  const algo: Algorithm = {
    kind: 'test.record', promptsPerIteration: 1, numGenerations: 2,
    async init() {},
    update(input) { seen.push(input); return {}; },
    parts: () => [],
    dispose() {},
  };
  await runRl(recordingContext({}, join(dir, 'out')), p, algo, p);
  // warmup ceil(4 * 0.5) = 2: 0, 5e-4, then linear decay 1e-3 * (4 - k) / 2.
  assert.deepEqual(seen.map((s) => +s.lr.toPrecision(12)), [0, 5e-4, 1e-3, 5e-4]);
  assert.deepEqual(seen.map((s) => s.temperature), [0.5 + 1e-7, 0.5 + 1e-7, 0.5 + 1e-7, 0.5 + 1e-7]);
  // The old and reference log-probs from the logits by hand: log softmax(logits / (0.5 + 1e-7)).
  const { seq, oldLogp, refLogp } = seen[0];
  const row = seq.ids[0], start = seq.start[0];
  const logits = model.forward(tf.tensor2d([row], [1, row.length], 'int32'));
  const L = logits.arraySync()[0];
  logits.dispose();
  for (let t = start; t < row.length && seq.mask[0][t] === 1; t++) {
    const x = L[t - 1].map((v) => v / (0.5 + 1e-7));
    const max = Math.max(...x);
    const want = x[row[t]] - max - Math.log(x.reduce((a, v) => a + Math.exp(v - max), 0));
    assert.ok(Math.abs(oldLogp[0][t] - want) < 1e-4, `old log-prob of token ${t}: ${oldLogp[0][t]} vs ${want}`);
    assert.ok(Math.abs(refLogp[0][t] - want) < 1e-4, `reference log-prob of token ${t}: ${refLogp[0][t]} vs ${want}`);
  }
  model.dispose();
});
