import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { Rng } from '../../common/rng.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { generate } from '../../engine/generate.ts';
import { logProbOf, rankDescending, rankDescendingJs, sampleToken, sampleWithLogProb } from '../../engine/sampling.ts';
import { tinyConfig } from './tiny.ts';

let model: CausalLM;
before(async () => {
  await initBackend();
  model = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(41);
});
const prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]];

test('greedy decoding gives the same tokens with and without the KV cache', () => {
  const withCache = generate(model, prompts, { maxNewTokens: 12, temperature: 0 });
  const without = generate(model, prompts, { maxNewTokens: 12, temperature: 0, useCache: false });
  assert.deepEqual(withCache.tokens, without.tokens);
  for (let b = 0; b < prompts.length; b++) {
    assert.equal(withCache.tokens[b].length, 12);
    for (let t = 0; t < 12; t++) assert.ok(Math.abs(withCache.logprobs[b][t] - without.logprobs[b][t]) < 1e-4);
  }
  assert.deepEqual(withCache.finishReasons, ['length', 'length', 'length']);
});

test('a ragged batch gives what each prompt gives alone', () => {
  const batch = generate(model, prompts, { maxNewTokens: 10, temperature: 0.9, topP: 0.9, seed: 7 });
  prompts.forEach((p, i) => {
    // Row i draws from stream "row i" of the seed; alone it is row 0, so compare greedy rows and
    // sampled rows with the same stream by putting the prompt at the same row index.
    const alone = generate(model, prompts.map((q, j) => (j === i ? p : [p[0]])), { maxNewTokens: 10, temperature: 0.9, topP: 0.9, seed: 7 });
    assert.deepEqual(alone.tokens[i], batch.tokens[i]);
    for (let t = 0; t < batch.logprobs[i].length; t++) assert.ok(Math.abs(alone.logprobs[i][t] - batch.logprobs[i][t]) < 1e-4);
  });
  const greedyBatch = generate(model, prompts, { maxNewTokens: 8, temperature: 0 });
  prompts.forEach((p, i) => assert.deepEqual(generate(model, [p], { maxNewTokens: 8, temperature: 0 }).tokens[0], greedyBatch.tokens[i]));
});

test('log-probs are those of the model for the chosen tokens', () => {
  const r = generate(model, [prompts[0]], { maxNewTokens: 3, temperature: 1, seed: 3 });
  const seq = [...prompts[0], ...r.tokens[0]];
  const logits = model.forward(tf.tensor2d([seq], [1, seq.length], 'int32'));
  const logp = tf.logSoftmax(logits).arraySync() as number[][][];
  for (let t = 0; t < 3; t++) {
    const pos = prompts[0].length - 1 + t;
    assert.ok(Math.abs(logp[0][pos][r.tokens[0][t]] - r.logprobs[0][t]) < 1e-4);
  }
});

test('sampling is deterministic by seed and differs across seeds', () => {
  const opts = { maxNewTokens: 16, temperature: 1.2 };
  const a = generate(model, prompts, { ...opts, seed: 1 });
  const b = generate(model, prompts, { ...opts, seed: 1 });
  const c = generate(model, prompts, { ...opts, seed: 2 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
  // Identical prompts in one batch are different samples (each row has its own stream).
  const same = generate(model, [prompts[0], prompts[0]], { ...opts, seed: 1 });
  assert.notDeepEqual(same.tokens[0], same.tokens[1]);
});

test('stop tokens and stop strings end a row; others run to max new tokens', () => {
  const free = generate(model, prompts, { maxNewTokens: 10, temperature: 0 });
  const stopAt = free.tokens[0][3];
  const firstIndex = free.tokens[0].indexOf(stopAt);
  const r = generate(model, prompts, { maxNewTokens: 10, temperature: 0, stopTokenIds: [stopAt] });
  assert.deepEqual(r.tokens[0], free.tokens[0].slice(0, firstIndex + 1));
  assert.equal(r.finishReasons[0], 'stop_token');
  for (const b of [1, 2]) {
    const k = free.tokens[b].indexOf(stopAt);
    assert.deepEqual(r.tokens[b], k >= 0 ? free.tokens[b].slice(0, k + 1) : free.tokens[b]);
  }
  // Decoded as letters: stop when the text contains the letters of tokens 2..3 of row 1.
  const decode = (ids: number[]) => ids.map((i) => String.fromCharCode(65 + (i % 26))).join('');
  const target = decode(free.tokens[1].slice(2, 4));
  const s = generate(model, prompts, { maxNewTokens: 10, temperature: 0, stopStrings: [target], decode });
  const expectedLen = [...Array(11).keys()].find((n) => decode(free.tokens[1].slice(0, n)).includes(target))!;
  assert.deepEqual(s.tokens[1], free.tokens[1].slice(0, expectedLen));
  assert.equal(s.finishReasons[1], 'stop_string');
  assert.throws(() => generate(model, prompts, { maxNewTokens: 2, stopStrings: ['x'] }), /stopStrings need a decode function/);
  assert.throws(() => generate(model, [[1, 999]], { maxNewTokens: 2 }), /token id 999 is outside the vocabulary \[0, 64\)/);
});

test('top-k 1 is greedy; top-p keeps the smallest set reaching p', () => {
  const logits = new Float32Array([0, Math.log(6), Math.log(3), Math.log(1)]); // probs 0.1, 0.6, 0.3, 0.1 (x 1/1.1 normalised)
  const rng = new Rng(5);
  for (let i = 0; i < 50; i++) assert.equal(sampleToken(logits, { topK: 1 }, rng), 1);
  // probs: 1/11, 6/11, 3/11, 1/11; top-p 0.8 keeps tokens 1 and 2 (6/11 + 3/11 = 0.818)
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) seen.add(sampleToken(logits, { topP: 0.8 }, rng));
  assert.deepEqual([...seen].sort(), [1, 2]);
  const all = new Set<number>();
  for (let i = 0; i < 500; i++) all.add(sampleToken(logits, {}, rng));
  assert.deepEqual([...all].sort(), [0, 1, 2, 3]);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[sampleToken(logits, { topK: 2 }, rng)]++;
  assert.ok(Math.abs(counts[1] / 4000 - 2 / 3) < 0.04, `top-2 renormalised share ${counts[1] / 4000}`);
});

test('a wide batch (keys appended by pad and add, not concat) matches no cache and single runs', () => {
  // 20 rows x 2 key/value heads x head size 8 = 320 key rows, above the 256 where the cache stops using concat.
  const wide = Array.from({ length: 20 }, (_, i) => Array.from({ length: 1 + (i % 7) }, (_, j) => (i * 11 + j * 5) % 64));
  const withCache = generate(model, wide, { maxNewTokens: 10, temperature: 0 });
  const without = generate(model, wide, { maxNewTokens: 10, temperature: 0, useCache: false });
  assert.deepEqual(withCache.tokens, without.tokens);
  for (const i of [0, 6, 19]) {
    const alone = generate(model, [wide[i]], { maxNewTokens: 10, temperature: 0 });
    assert.deepEqual(alone.tokens[0], withCache.tokens[i]);
    for (let t = 0; t < 10; t++) assert.ok(Math.abs(alone.logprobs[0][t] - withCache.logprobs[i][t]) < 1e-4);
  }
});

test('sampling with its log-prob equals sampleToken then logProbOf, bit for bit', () => {
  const rng = new Rng(8);
  const logits = new Float32Array(300).map(() => rng.normal() * 3);
  for (const opts of [{}, { temperature: 1 }, { temperature: 0.7 }, { temperature: 0 }, { topK: 5 }, { topP: 0.9 }, { topK: 300 }]) {
    const a = new Rng(21), b = new Rng(21);
    for (let i = 0; i < 200; i++) {
      const got = sampleWithLogProb(logits, opts, a);
      const token = sampleToken(logits, opts, b);
      assert.equal(got.token, token);
      assert.equal(got.logprob, logProbOf(logits, token));
    }
  }
});

/** Top-k / top-p / min-p sampling as defined: every id sorted by a comparator, then the cuts (the reference for the radix-sorted path). */
function referenceSample(logits: Float32Array, opts: { temperature?: number; topK?: number; topP?: number; minP?: number }, rng: Rng): number {
  const temperature = opts.temperature ?? 1, V = logits.length;
  const topK = opts.topK && opts.topK > 0 ? Math.min(opts.topK, V) : V, topP = opts.topP ?? 1, minP = opts.minP ?? 0;
  const max = Math.max(...logits);
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
  const probs = order.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = probs.reduce((a, b) => a + b, 0);
  // Top-p: the shortest prefix whose running share reaches p; min-p: then drop the tail below minP x the best.
  const shares: number[] = [];
  probs.forEach((p, j) => shares.push((shares[j - 1] ?? 0) + p / total));
  const reached = shares.findIndex((c) => c >= topP);
  let keep = reached < 0 ? order.length : reached + 1;
  if (minP > 0) keep = Math.max(1, probs.slice(0, keep).filter((p) => p >= minP * probs[0]).length);
  const kept = probs.slice(0, keep);
  const drawn = rng.next() * kept.reduce((a, b) => a + b, 0);
  let left = drawn;
  const at = kept.findIndex((p) => (left -= p) < 0);
  return order[at < 0 ? keep - 1 : at];
}

test('the ranking of logits, in the module and in JavaScript, is a comparator sort\'s order (ties by lower id, -0 = +0, infinities), and the cuts sample as defined', () => {
  const rng = new Rng(3);
  const special = [0, -0, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38, -3.4e38, 1, 1, -1, -1];
  for (const V of [1, 7, 300, 5000]) {
    // Few distinct values, so ties are common; some special ones mixed in.
    const logits = Float32Array.from({ length: V }, (_, i) => (i % 5 === 0 ? special[i % special.length] : Math.round(rng.normal() * 4) / 2));
    const ref = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
    assert.deepEqual([...rankDescending(logits)], ref, `V=${V}`);
    assert.deepEqual([...rankDescendingJs(logits)], ref, `V=${V}, in JavaScript`);
  }
  // Narrow logits (every one ranked), and wide ones, where only those within 36.8 temperatures of
  // the maximum are ranked and cuts that reach past them rank the whole row.
  const narrow = Float32Array.from({ length: 1000 }, (_, i) => (i % 3 ? rng.normal() * 2 : Math.round(rng.normal())));
  const wide = Float32Array.from({ length: 1000 }, (_, i) => (i % 3 ? rng.normal() * 40 : Math.round(rng.normal() * 10)));
  const cuts = [
    { topP: 0.9, temperature: 0.5 }, { topK: 40, topP: 0.95 }, { topP: 0.5, minP: 0.05, temperature: 1.3 }, { topK: 7 }, { minP: 0.2 },
    { topK: 900 }, { topK: 900, topP: 0.9999999999999999, temperature: 3 }, { topP: 0.999, temperature: 0.05 },
  ];
  for (const logits of [narrow, wide]) {
    for (const opts of cuts) {
      const a = new Rng(11), b = new Rng(11);
      for (let i = 0; i < 100; i++) assert.equal(sampleToken(logits, opts, a), referenceSample(logits, opts, b), JSON.stringify(opts));
      assert.equal(a.next(), b.next(), 'as many draws on both');
    }
  }
});

test('generation leaves no tensors behind', () => {
  generate(model, prompts, { maxNewTokens: 4, temperature: 0 });
  const before = tf.memory().numTensors;
  generate(model, prompts, { maxNewTokens: 6, temperature: 1, seed: 9 });
  generate(model, prompts, { maxNewTokens: 6, temperature: 0, useCache: false });
  assert.equal(tf.memory().numTensors, before);
});
