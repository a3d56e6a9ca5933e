// Sampling cuts (min-p beside top-k and top-p) and the per-row seed streams of generate().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../common/rng.ts';
import { rowSeed } from '../../engine/generate.ts';
import { logProbOf, sampleToken, sampleWithLogProb, topLogprobs } from '../../engine/sampling.ts';

// Probabilities 1/11, 6/11, 3/11, 1/11 at temperature 1.
const logits = new Float32Array([0, Math.log(6), Math.log(3), Math.log(1)]);

function seen(opts: Parameters<typeof sampleToken>[1], draws = 400): number[] {
  const rng = new Rng(3);
  const out = new Set<number>();
  for (let i = 0; i < draws; i++) out.add(sampleToken(logits, opts, rng));
  return [...out].sort();
}

test('min-p keeps the tokens at least min_p times as likely as the most likely one', () => {
  // Threshold 0.4 * 6/11 = 2.4/11: tokens 1 (6/11) and 2 (3/11) pass, 0 and 3 (1/11) do not.
  assert.deepEqual(seen({ minP: 0.4 }), [1, 2]);
  // Threshold 0.6 * 6/11 = 3.6/11: only the most likely token.
  assert.deepEqual(seen({ minP: 0.6 }), [1]);
  // 0 disables it.
  assert.deepEqual(seen({ minP: 0 }), [0, 1, 2, 3]);
  // 1 keeps only the most likely token(s).
  assert.deepEqual(seen({ minP: 1 }), [1]);
});

test('min-p applies to the probabilities after the temperature', () => {
  // At temperature 2 the weights are sqrt(6), sqrt(3), 1, 1: threshold 0.6 * sqrt(6) = 1.47 keeps tokens 1 and 2.
  assert.deepEqual(seen({ minP: 0.6, temperature: 2 }), [1, 2]);
  // Greedy ignores it.
  assert.deepEqual(seen({ minP: 0.6, temperature: 0 }), [1]);
});

test('min-p with top-k and top-p: a token must pass every cut', () => {
  assert.deepEqual(seen({ minP: 0.4, topK: 1 }), [1]);
  assert.deepEqual(seen({ minP: 0.05, topK: 3 }), [0, 1, 2]);
  assert.deepEqual(seen({ minP: 0.05, topP: 0.8 }), [1, 2]);
  // The kept tokens are drawn in proportion to their probabilities: 6 : 3.
  const rng = new Rng(9);
  let ones = 0;
  for (let i = 0; i < 4000; i++) if (sampleToken(logits, { minP: 0.4 }, rng) === 1) ones++;
  assert.ok(Math.abs(ones / 4000 - 2 / 3) < 0.04, `share of token 1: ${ones / 4000}`);
});

test('sampling with its log-prob under min-p equals sampleToken then logProbOf', () => {
  const rng = new Rng(8);
  const wide = new Float32Array(300).map(() => rng.normal() * 3);
  for (const opts of [{ minP: 0.1 }, { minP: 0.3, temperature: 0.7 }, { minP: 0.05, topK: 20, topP: 0.9 }]) {
    const a = new Rng(21), b = new Rng(21);
    for (let i = 0; i < 200; i++) {
      const got = sampleWithLogProb(wide, opts, a);
      const token = sampleToken(wide, opts, b);
      assert.equal(got.token, token);
      assert.equal(got.logprob, logProbOf(wide, token));
    }
  }
});

test('rowSeed(seed, k) seeds the stream of row k, as a fork of the batch seed', () => {
  for (const seed of [0, 1, 123, 2 ** 31 + 5]) {
    for (const row of [0, 1, 7, 1000]) {
      const a = new Rng(rowSeed(seed, row));
      const b = new Rng(seed).fork(`row ${row}`);
      for (let i = 0; i < 4; i++) assert.equal(a.nextU32(), b.nextU32());
    }
  }
  assert.notEqual(rowSeed(5, 0), rowSeed(5, 1));
  assert.notEqual(rowSeed(5, 0), rowSeed(6, 0));
});

test('with the row\'s exponentials from the backend, sampling draws from the same distribution and reports the same log-probabilities', () => {
  const rng0 = new Rng(11);
  const wide = Float32Array.from({ length: 40 }, () => rng0.normal() * 2);
  let max = -Infinity;
  for (const x of wide) max = Math.max(max, x);
  // As a decoder session has them: exp(logits - max) in float32.
  const exps = Float32Array.from(wide, (x) => Math.fround(Math.exp(x - max)));
  // Plain sampling: frequencies follow the softmax; each log-probability is logProbOf's to float32 rounding,
  // and the top log-probabilities agree with the sampled token's to the bit.
  const rng = new Rng(5);
  const counts = new Array<number>(wide.length).fill(0);
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const { token, logprob } = sampleWithLogProb(wide, {}, rng, exps);
    counts[token]++;
    assert.ok(Math.abs(logprob - logProbOf(wide, token)) < 1e-6);
    if (i < 20) assert.equal(topLogprobs(wide, wide.length, exps).find((t) => t.token === token)!.logprob, logprob);
  }
  for (let t = 0; t < wide.length; t++) {
    const p = Math.exp(logProbOf(wide, t));
    assert.ok(Math.abs(counts[t] / n - p) < 4 * Math.sqrt(p * (1 - p) / n) + 1e-3, `token ${t}: ${counts[t] / n} against ${p}`);
  }
  // Other sampling draws as sampleToken does, token for token.
  for (const opts of [{ temperature: 0 }, { temperature: 0.7 }, { topK: 5 }, { topP: 0.9 }, { minP: 0.1 }]) {
    const a = new Rng(9), b = new Rng(9);
    for (let i = 0; i < 100; i++) {
      const got = sampleWithLogProb(wide, opts, a, exps);
      const token = sampleToken(wide, opts, b);
      assert.equal(got.token, token, JSON.stringify(opts));
      assert.ok(Math.abs(got.logprob - logProbOf(wide, token)) < 1e-6);
    }
  }
  assert.throws(() => sampleWithLogProb(wide, {}, rng, exps.subarray(1)), /39 exponentials for 40 logits/);
});
