// The decoder session (engine/decoder.ts), the engine's one generation path: sequences joining
// and leaving a running batch decode as they would alone, with and without the KV cache.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { DecoderSession, PREFILL_PASS_ROWS, prefillGroups, setPrefillSplitting, type SessionToken } from '../../engine/decoder.ts';
import { generate, rowSeed } from '../../engine/generate.ts';
import { tinyConfig } from './tiny.ts';

let model: CausalLM;
before(async () => {
  await initBackend();
  model = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(41);
});

const prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14], [20, 21, 22, 23, 24, 25, 26], [30]];
const sampling = { temperature: 0.9, topP: 0.95 };

/** Runs a script of joins and leaves; returns each sequence's tokens and log-probs. */
function scripted(useCache: boolean): Map<number, { tokens: number[]; logprobs: number[] }> {
  const session = new DecoderSession(model, { padTokenId: 3, useCache });
  const got = new Map<number, { tokens: number[]; logprobs: number[] }>();
  const seq = (id: number) => ({ id, promptIds: prompts[id], sampling, seed: rowSeed(5, id) });
  const step = (n: number) => {
    for (let i = 0; i < n; i++) {
      for (const t of session.step() as SessionToken[]) {
        const g = got.get(t.id) ?? { tokens: [], logprobs: [] };
        g.tokens.push(t.token);
        g.logprobs.push(t.logprob);
        got.set(t.id, g);
      }
    }
  };
  try {
    session.add([seq(0), seq(1)]);
    step(3);
    session.add([seq(2), seq(3)]); // a longer prompt joins a shorter running cache
    step(2);
    session.remove([1]);
    session.retire([0]); // stays in the batch, samples nothing more
    session.add([seq(4)]);
    step(4);
    assert.equal(session.size, 4);
    session.remove([0, 2, 3, 4]);
    assert.equal(session.size, 0);
  } finally {
    session.dispose();
  }
  return got;
}

test('sequences that join, leave or retire decode as each would alone, with and without the cache', () => {
  generate(model, [prompts[0]], { maxNewTokens: 1 }); // the model keeps its head's transpose for decoding
  const before = tf.memory().numTensors;
  const cached = scripted(true);
  assert.equal(tf.memory().numTensors, before, 'the session frees its cache');
  const expectedLen = new Map([[0, 5], [1, 5], [2, 6], [3, 6], [4, 4]]);
  for (const [id, n] of expectedLen) {
    // Alone, at the same row index (so the same stream): rowSeed(5, id).
    const alone = generate(model, prompts.map((p, j) => (j === id ? p : [p[0]])), { ...sampling, maxNewTokens: n, seed: 5 });
    const g = cached.get(id)!;
    assert.deepEqual(g.tokens, alone.tokens[id], `sequence ${id}`);
    g.logprobs.forEach((lp, t) => assert.ok(Math.abs(lp - alone.logprobs[id][t]) < 1e-4, `sequence ${id} token ${t}`));
  }
  const recomputed = scripted(false);
  for (const [id, g] of cached) assert.deepEqual(recomputed.get(id)!.tokens, g.tokens, `sequence ${id} without the cache`);
});

test('top log-probabilities come with the sampled token when asked; bad prompts are refused', () => {
  const session = new DecoderSession(model);
  try {
    session.add([{ id: 7, promptIds: prompts[0], sampling: { temperature: 0 }, seed: 1, topLogprobs: 3 }]);
    const [t] = session.step();
    assert.equal(t.top!.length, 3);
    assert.equal(t.top![0].token, t.token, 'greedy: the most likely token');
    assert.equal(t.top![0].logprob, t.logprob);
    assert.throws(() => session.add([{ id: 8, promptIds: [], sampling: {}, seed: 1 }]), /a prompt needs at least one token/);
    assert.throws(() => session.add([{ id: 9, promptIds: [1, 64], sampling: {}, seed: 1 }]), /token id 64 is outside the vocabulary \[0, 64\)/);
  } finally {
    session.dispose();
  }
});

test('sequences leaving cost no copy until the next step, which re-forms the cache once without a gather', async () => {
  const session = new DecoderSession(model);
  try {
    session.add(prompts.map((promptIds, id) => ({ id, promptIds, sampling, seed: id })));
    session.step();
    session.step();
    const removed = await tf.profile(() => session.remove([1, 3]));
    assert.equal(removed.kernels.length, 0, `remove ran ${removed.kernels.map((k) => k.name).join(', ')}`);
    assert.equal(session.size, 3);
    session.add([{ id: 9, promptIds: prompts[3], sampling, seed: 9 }]);
    // Kernel counts of a step, taken at once (the profiler reuses its record).
    const profileStep = async (sess: DecoderSession) => {
      let tokens: SessionToken[] = [];
      const names = (await tf.profile(() => {
        tokens = sess.step();
      })).kernels.map((k) => k.name);
      return { tokens, count: (name: string) => names.filter((n) => n === name).length };
    };
    const stepped = await profileStep(session);
    assert.deepEqual(stepped.tokens.map((t) => t.id), [0, 2, 4, 9], 'the rows left, then the one joining');
    // Next to a step of the same batch where nothing joins or leaves: no gather more (the
    // embedding lookup is one), and one concat more per cache tensor (each layer's keys and values).
    const same = new DecoderSession(model);
    same.add(prompts.map((promptIds, id) => ({ id, promptIds, sampling, seed: id })));
    same.step();
    same.step();
    const plain = await profileStep(same);
    same.dispose();
    assert.equal(stepped.count('GatherV2'), plain.count('GatherV2'), 'no gather of the cache');
    assert.equal(stepped.count('Concat'), plain.count('Concat') + 2 * model.config.num_hidden_layers);
  } finally {
    session.dispose();
  }
});

test('a few sequences leaving stay in place as padding until others join, then one re-forming drops them', async () => {
  const session = new DecoderSession(model);
  const same = new DecoderSession(model);
  const kernels = async (sess: DecoderSession) => {
    let ids: number[] = [];
    const names = (await tf.profile(() => { ids = sess.step().map((t) => t.id); })).kernels.map((k) => k.name);
    return { ids, slices: names.filter((n) => n === 'Slice').length };
  };
  try {
    for (const s of [session, same]) {
      s.add(prompts.map((promptIds, id) => ({ id, promptIds, sampling, seed: id })));
      s.step();
      s.step();
    }
    // One of five leaves (no more than a quarter): the next step runs as the batch's does, no slicing of the cache.
    session.remove([2]);
    const left = await kernels(session);
    const plain = await kernels(same);
    assert.deepEqual(left.ids, [0, 1, 3, 4]);
    assert.equal(left.slices, plain.slices, 'no re-forming for one sequence leaving');
    // One joins: that step re-forms the cache, slicing out the runs of rows kept.
    session.add([{ id: 9, promptIds: prompts[1], sampling, seed: 9 }]);
    const joined = await kernels(session);
    assert.deepEqual(joined.ids, [0, 1, 3, 4, 9]);
    assert.ok(joined.slices > plain.slices, 'the join re-forms the cache');
    // Two of five leave (more than a quarter): the next step re-forms without waiting for a join.
    session.remove([0, 1]);
    const many = await kernels(session);
    assert.deepEqual(many.ids, [3, 4, 9]);
    assert.ok(many.slices > plain.slices);
  } finally {
    session.dispose();
    same.dispose();
  }
});

test('on wasm the cache grows in place, and decoding gives what concatenating gives, bit for bit', async () => {
  const { setInPlaceWrites } = await import('../../engine/wasm-kernels.ts');
  const keep = model;
  await initBackend('wasm');
  try {
    model = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(41);
    // Room is what is needed and half again (at least 16): a prefill of 5 then single steps run out of it
    // and grow, and a session's cache tensors have room beyond the valid positions.
    const session = new DecoderSession(model, { padTokenId: 3 });
    session.add([{ id: 0, promptIds: prompts[3], sampling, seed: 1 }]);
    session.step();
    const cache = (session as unknown as { running: { cache: { length: number; layers: { kT: tf.Tensor }[] } } }).running.cache;
    const kT = cache.layers[0]!.kT;
    assert.ok(kT.shape[2]! > cache.length, `room beyond ${cache.length}: ${kT.shape}`);
    session.step();
    assert.equal(cache.layers[0]!.kT, kT, 'a step with room writes into the same tensor');
    for (let i = 0; i < 20; i++) session.step();
    // The first step only sampled (the prompt was prefilled by add); the 21 after it each fed a token.
    assert.equal(cache.length, 7 + 21);
    assert.notEqual(cache.layers[0]!.kT, kT, 'the room ran out and grew');
    assert.ok(cache.layers[0]!.kT.shape[2]! >= cache.length);
    session.dispose();

    const before = tf.memory().numTensors;
    const inPlace = scripted(true);
    assert.equal(tf.memory().numTensors, before, 'the session frees its cache');
    setInPlaceWrites(false);
    const concatenated = scripted(true);
    assert.deepEqual([...inPlace], [...concatenated]);
    assert.ok([...inPlace.values()].every((g) => g.tokens.length > 0));
    model.dispose();
  } finally {
    setInPlaceWrites(true);
    await initBackend('tensorflow').catch(() => initBackend());
    model = keep;
  }
});

test('on wasm attention skips each row\'s leading padding in the cache, and decoding is unchanged bit for bit', async () => {
  const { batchMatMulPrefix, setPaddingSkip, MASKED_SCORE } = await import('../../engine/attention-kernel.ts');
  const keep = model;
  await initBackend('wasm');
  try {
    // The kernel: per matrix, `n` leaves the first columns out (written masked), `k` the first terms of the sums.
    const q = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]); // G = 2, M = 2, K = d = 2
    const keys = tf.tensor3d(Array.from({ length: 2 * 2 * 6 }, (_, i) => i + 1), [2, 2, 6]); // [G, d, capacity 6]
    const scores = batchMatMulPrefix(q, keys, 5, { on: 'n', at: [2, 0] });
    const full = batchMatMulPrefix(q, keys, 5);
    const s = scores.arraySync(), f = full.arraySync();
    assert.deepEqual(s[0].map((row) => row.slice(0, 2)), [[MASKED_SCORE, MASKED_SCORE], [MASKED_SCORE, MASKED_SCORE]], 'skipped columns are masked');
    assert.deepEqual(s[0].map((row) => row.slice(2)), f[0].map((row) => row.slice(2)));
    assert.deepEqual(s[1], f[1]);
    const probs = tf.tensor3d([0, 0, 0.5, 0.25, 0.25, 0.1, 0.2, 0.3, 0.2, 0.2], [2, 1, 5]);
    const values = tf.tensor3d(Array.from({ length: 2 * 6 * 2 }, (_, i) => i - 7), [2, 6, 2]); // [G, capacity 6, d]
    const mixed = batchMatMulPrefix(probs, values, 2, { on: 'k', at: [2, 1] }).arraySync();
    const v = values.arraySync();
    const want = (g: number, from: number) => [0, 1].map((j) => {
      let acc = 0;
      for (let k = from; k < 5; k++) acc = Math.fround(acc + Math.fround(probs.arraySync()[g][0][k] * v[g][k][j]));
      return acc;
    });
    assert.deepEqual(mixed[0][0], want(0, 2));
    assert.deepEqual(mixed[1][0], want(1, 1), 'terms before the skip are left out');
    tf.dispose([q, keys, scores, full, probs, values]);

    // Decoding: prompts of very different lengths (left-padded), and sequences joining a longer cache.
    model = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(41);
    const mixedPrompts = [[5, 6, 7], Array.from({ length: 40 }, (_, i) => 8 + i), [50], Array.from({ length: 17 }, (_, i) => 60 - i)];
    const run = () => ({ script: [...scripted(true)], batch: generate(model, mixedPrompts, { temperature: 0.8, maxNewTokens: 12, seed: 9 }) });
    setPaddingSkip(false);
    const everything = run();
    setPaddingSkip(true);
    const skipping = run();
    assert.deepEqual(skipping, everything);

    // Skipping, a decoding step adds no attention bias (no Add kernel): the padding is all leading,
    // a retired row's included (it is fed padding that it marks as real). Without skipping it does.
    const biasAdds = async () => {
      const session = new DecoderSession(model);
      session.add(mixedPrompts.map((promptIds, id) => ({ id, promptIds, sampling: { temperature: 0 }, seed: id })));
      session.step();
      session.retire([2]);
      session.step();
      const prof = await tf.profile(() => void session.step());
      session.dispose();
      return prof.kernels.filter((k) => k.name === 'Add').length;
    };
    assert.equal(await biasAdds(), 0, 'no bias added');
    setPaddingSkip(false);
    assert.ok(await biasAdds() > 0, 'the bias is added when the padding is not skipped');
    setPaddingSkip(true);
    model.dispose();
  } finally {
    setPaddingSkip(true);
    await initBackend('tensorflow').catch(() => initBackend());
    model = keep;
  }
});

test('prompts of very different lengths are prefilled in groups of similar length, and decode as each would alone', () => {
  // Equal lengths, or too little padding to pay for another pass: one group, in the order given.
  assert.deepEqual(prefillGroups([7, 7, 7]), [[0, 1, 2]]);
  assert.deepEqual(prefillGroups([5, 2, 3]), [[0, 1, 2]]);
  assert.deepEqual(prefillGroups([9]), [[0]]);
  // Two short prompts beside a long one: the short ones go together, first.
  assert.deepEqual(prefillGroups([3, 4 * PREFILL_PASS_ROWS, 4]), [[0, 2], [1]]);
  // A wide spread: every prompt once, groups ordered by length, and fewer padded positions plus
  // passes than one pass over all.
  const lengths = Array.from({ length: 32 }, (_, i) => 8 + ((i * 37) % 200));
  const groups = prefillGroups(lengths);
  assert.ok(groups.length > 1);
  assert.deepEqual(groups.flat().sort((a, b) => a - b), lengths.map((_, i) => i));
  for (let g = 1; g < groups.length; g++) assert.ok(Math.max(...groups[g - 1].map((i) => lengths[i])) <= Math.min(...groups[g].map((i) => lengths[i])));
  const cost = groups.reduce((a, g) => a + PREFILL_PASS_ROWS + g.length * Math.max(...g.map((i) => lengths[i])), 0);
  assert.ok(cost < PREFILL_PASS_ROWS + 32 * Math.max(...lengths), `${cost}`);

  // Decoding: a batch whose prefill is split gives each row what it gives alone, and what one pass gives.
  // (The test model has 64 tokens and 128 positions.)
  const long = Array.from({ length: 120 }, (_, i) => 10 + ((i * 7) % 50));
  const mixed = [[5, 6, 7], long, [8, 9], long.slice(20)];
  assert.ok(prefillGroups(mixed.map((p) => p.length)).length > 1, 'the prefill is split');
  const opts = { temperature: 0.9, maxNewTokens: 6, seed: 11 };
  const split = generate(model, mixed, opts);
  setPrefillSplitting(false);
  let onePass;
  try {
    onePass = generate(model, mixed, opts);
  } finally {
    setPrefillSplitting(true);
  }
  assert.deepEqual(split.tokens, onePass.tokens);
  split.logprobs.forEach((row, i) => row.forEach((lp, t) => assert.ok(Math.abs(lp - onePass.logprobs[i][t]) < 1e-4, `row ${i} token ${t}`)));
  mixed.forEach((p, id) => {
    const alone = generate(model, mixed.map((q, j) => (j === id ? q : [q[0]])), opts);
    assert.deepEqual(split.tokens[id], alone.tokens[id], `row ${id}`);
  });
});
