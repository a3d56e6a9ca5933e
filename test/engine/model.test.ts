import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM, createCache, disposeCache } from '../../engine/model.ts';
import { maxAbsDiff, tinyConfig } from './tiny.ts';

before(async () => { await initBackend(); });

const ids = () => tf.tensor2d([[1, 5, 9, 13, 2, 7], [3, 3, 60, 0, 8, 1]], [2, 6], 'int32');

test('forward gives [B, T, V] logits and lastOnly the last position', () => {
  const m = new CausalLM(tinyConfig()).initRandom(1);
  const x = ids();
  const full = m.forward(x);
  assert.deepEqual(full.shape, [2, 6, 64]);
  const last = m.forward(x, { lastOnly: true });
  assert.deepEqual(last.shape, [2, 1, 64]);
  const expected = tf.slice(full, [0, 5, 0], [2, 1, 64]);
  assert.ok(maxAbsDiff(last.dataSync(), expected.dataSync()) < 1e-5);
  assert.ok(Number.isFinite(full.dataSync()[0]));
  tf.dispose([full, last, expected, x]);
  m.dispose();
});

test('the model is causal: changing a later token leaves earlier logits unchanged', () => {
  const m = new CausalLM(tinyConfig()).initRandom(2);
  const a = m.forward(tf.tensor2d([[1, 2, 3, 4]], [1, 4], 'int32'));
  const b = m.forward(tf.tensor2d([[1, 2, 3, 40]], [1, 4], 'int32'));
  const ad = a.dataSync(), bd = b.dataSync();
  assert.ok(maxAbsDiff(ad.subarray(0, 3 * 64), bd.subarray(0, 3 * 64)) < 1e-6);
  assert.ok(maxAbsDiff(ad.subarray(3 * 64), bd.subarray(3 * 64)) > 1e-4);
  m.dispose();
});

test('grouped-query attention equals full attention with each key/value head repeated', () => {
  const gqa = new CausalLM(tinyConfig({ num_key_value_heads: 2 })).initRandom(3);
  const mha = new CausalLM(tinyConfig({ num_key_value_heads: 4 }));
  const w = gqa.getWeights();
  const d = 8; // head_dim = 32 / 4
  for (const [name, t] of [...w]) {
    if (!/\.(k|v)_proj\./.test(name)) continue;
    // [2*d, ...] -> [4*d, ...]: kv head h serves query heads 2h and 2h+1.
    const rowLen = t.shape.length === 2 ? t.shape[1] : 1;
    const out = new Float32Array(4 * d * rowLen);
    for (let h = 0; h < 4; h++) out.set(t.data.subarray(Math.floor(h / 2) * d * rowLen, (Math.floor(h / 2) + 1) * d * rowLen), h * d * rowLen);
    w.set(name, { shape: t.shape.length === 2 ? [4 * d, rowLen] : [4 * d], data: out });
  }
  mha.setWeights(w);
  const x = ids();
  assert.ok(maxAbsDiff(gqa.forward(x).dataSync(), mha.forward(x).dataSync()) < 1e-5);
  gqa.dispose();
  mha.dispose();
});

test('tied embeddings: an untied model with lm_head = embed_tokens gives the same logits', () => {
  const tied = new CausalLM(tinyConfig({ tie_word_embeddings: true })).initRandom(4);
  const untied = new CausalLM(tinyConfig({ tie_word_embeddings: false }));
  assert.equal(tied.params.has('lm_head.weight'), false);
  assert.equal(untied.numParams() - tied.numParams(), 64 * 32);
  const w = tied.getWeights();
  w.set('lm_head.weight', w.get('model.embed_tokens.weight')!);
  untied.setWeights(w);
  const x = ids();
  assert.ok(maxAbsDiff(tied.forward(x).dataSync(), untied.forward(x).dataSync()) < 1e-5);
  tied.dispose();
  untied.dispose();
});

test('llama with attention and MLP biases runs, and biases change the output', () => {
  const c = tinyConfig({ model_type: 'llama', attention_bias: true, mlp_bias: true });
  const m = new CausalLM(c).initRandom(5);
  const x = ids();
  const before = m.forward(x).dataSync();
  m.setWeights(new Map([['model.layers.0.self_attn.o_proj.bias', { shape: [32], data: new Float32Array(32).fill(0.5) }]]));
  assert.ok(maxAbsDiff(before, m.forward(x).dataSync()) > 1e-3);
  m.dispose();
});

test('the KV cache gives the logits of the full forward, token by token', () => {
  const m = new CausalLM(tinyConfig()).initRandom(6);
  const x = ids();
  const full = m.forward(x).arraySync() as number[][][];
  const cache = createCache();
  const first = m.forward(tf.slice(x, [0, 0], [2, 4]) as tf.Tensor2D, { cache }).arraySync() as number[][][];
  const fifth = m.forward(tf.slice(x, [0, 4], [2, 1]) as tf.Tensor2D, { cache }).arraySync() as number[][][];
  const sixth = m.forward(tf.slice(x, [0, 5], [2, 1]) as tf.Tensor2D, { cache }).arraySync() as number[][][];
  assert.equal(cache.length, 6);
  for (let b = 0; b < 2; b++) {
    assert.ok(maxAbsDiff(first[b][3], full[b][3]) < 1e-5);
    assert.ok(maxAbsDiff(fifth[b][0], full[b][4]) < 1e-5);
    assert.ok(maxAbsDiff(sixth[b][0], full[b][5]) < 1e-5);
  }
  disposeCache(cache);
  m.dispose();
});

test('left padding with an attention mask gives the unpadded logits', () => {
  const m = new CausalLM(tinyConfig()).initRandom(7);
  const alone = m.forward(tf.tensor2d([[4, 5, 6]], [1, 3], 'int32')).dataSync();
  const padded = m.forward(tf.tensor2d([[0, 0, 4, 5, 6]], [1, 5], 'int32'), { attentionMask: [[0, 0, 1, 1, 1]] }).dataSync();
  assert.ok(maxAbsDiff(alone, padded.subarray(2 * 64)) < 1e-5);
  assert.throws(() => m.forward(tf.tensor2d([[1, 2]], [1, 2], 'int32'), { attentionMask: [[1, 1, 1]] }), /attentionMask has shape \[1,3\], expected \[1,2\]/);
  m.dispose();
});

test('initRandom is deterministic by seed', () => {
  const a = new CausalLM(tinyConfig()).initRandom(11).getWeights();
  const b = new CausalLM(tinyConfig()).initRandom(11).getWeights();
  const c = new CausalLM(tinyConfig()).initRandom(12).getWeights();
  const name = 'model.layers.1.mlp.up_proj.weight';
  assert.deepEqual(a.get(name)!.data, b.get(name)!.data);
  assert.notDeepEqual(a.get(name)!.data, c.get(name)!.data);
  assert.deepEqual(a.get('model.norm.weight')!.data, new Float32Array(32).fill(1));
});

test('attention computed in position blocks equals one block (with padding and a cache)', () => {
  const m = new CausalLM(tinyConfig()).initRandom(8);
  const x = tf.tensor2d([[0, 0, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7]], [2, 7], 'int32');
  const mask = [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]];
  const whole = m.forward(x, { attentionMask: mask }).dataSync();
  for (const block of [1, 2, 3]) {
    m.attentionBlock = block;
    // Padding positions attend to nothing and their outputs are arbitrary: compare real positions.
    const got = m.forward(x, { attentionMask: mask }).dataSync();
    assert.ok(maxAbsDiff(got.subarray(2 * 64), whole.subarray(2 * 64)) < 1e-5, `block ${block}`);
    // Prefill 4 positions, then 3 more in one call on top of the cache.
    const cache = createCache();
    m.forward(tf.slice(x, [0, 0], [2, 4]) as tf.Tensor2D, { cache, attentionMask: mask.map((r) => r.slice(0, 4)) });
    const rest = m.forward(tf.slice(x, [0, 4], [2, 3]) as tf.Tensor2D, { cache, attentionMask: mask }).arraySync() as number[][][];
    const full = tf.tensor3d(whole, [2, 7, 64]).arraySync() as number[][][];
    for (let b = 0; b < 2; b++) for (let t = 0; t < 3; t++) assert.ok(maxAbsDiff(rest[b][t], full[b][4 + t]) < 1e-5);
    disposeCache(cache);
  }
  m.dispose();
});
