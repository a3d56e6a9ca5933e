import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig, memoryEstimate, parameterCount, parseConfig, toHfConfig, weightShapes } from '../../engine/config.ts';

const configs = join(import.meta.dirname, '..', '..', 'configs');

test('Qwen2.5-0.5B-Instruct preset has its 494,032,768 parameters', () => {
  const c = loadConfig(join(configs, 'qwen2.5-0.5b-instruct.json'));
  // embed 151936*896 + 24 * (q 896*896+896, k/v 2*(128*896+128), o 896*896, mlp 3*4864*896, norms 2*896) + final norm 896
  assert.equal(parameterCount(c), 136_134_656 + 24 * 14_912_384 + 896);
  assert.equal(parameterCount(c), 494_032_768);
  assert.equal(c.qkv_bias, true);
  assert.equal(c.o_bias, false);
  assert.equal(c.tie_word_embeddings, true);
  assert.equal(weightShapes(c).has('lm_head.weight'), false);
  assert.deepEqual(weightShapes(c).get('model.layers.0.self_attn.k_proj.weight'), [128, 896]);
  const mem = memoryEstimate(c, { dtype: 'bfloat16', batch: 1, seqLen: 1 });
  assert.equal(mem.weightsBytes, 494_032_768 * 2);
  assert.equal(mem.kvCacheBytes, 2 * 24 * 2 * 64 * 2); // 12 KiB a token
});

test('Llama-3.1-8B preset has its 8,030,261,248 parameters and 128 KiB of bf16 KV cache a token', () => {
  const c = loadConfig(join(configs, 'llama-3.1-8b.json'));
  assert.equal(parameterCount(c), 8_030_261_248);
  assert.equal(c.qkv_bias, false);
  assert.equal(c.head_dim, 128);
  assert.equal(c.rope_scaling?.rope_type, 'llama3');
  const mem = memoryEstimate(c, { dtype: 'bfloat16', batch: 1, seqLen: 1 });
  assert.equal(mem.kvCacheBytes, 131_072);
  assert.equal(mem.trainingStateBytes, 8_030_261_248 * 16);
  assert.ok(mem.weightsBytes > 16e9 && mem.weightsBytes < 16.1e9);
});

test('tiny and small presets are in their size classes', () => {
  const tiny = parameterCount(loadConfig(join(configs, 'tiny.json')));
  const small = parameterCount(loadConfig(join(configs, 'small.json')));
  assert.ok(tiny >= 0.5e6 && tiny <= 1e6, `tiny has ${tiny}`);
  assert.ok(small >= 8e6 && small <= 12e6, `small has ${small}`);
});

test('llama attention_bias puts biases on q, k, v and o; mlp_bias on the MLP', () => {
  const c = parseConfig({ model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, attention_bias: true, mlp_bias: true });
  const names = [...weightShapes(c).keys()];
  for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) assert.ok(names.includes(`model.layers.0.self_attn.${n}.bias`), n);
  assert.ok(names.includes('model.layers.0.mlp.down_proj.bias'));
  assert.ok(names.includes('lm_head.weight'));
  const back = parseConfig(toHfConfig(c));
  assert.deepEqual(weightShapes(back), weightShapes(c));
});

test('config errors name the file and the field', () => {
  assert.throws(() => parseConfig({ model_type: 'gpt2' }, 'x/config.json'), /x\/config\.json: model_type "gpt2" is not supported/);
  assert.throws(() => parseConfig({ model_type: 'qwen2', vocab_size: 10, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 3 }, 'c.json'),
    /c\.json: num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/);
  assert.throws(() => parseConfig({ model_type: 'qwen2', vocab_size: 10, hidden_size: 8, intermediate_size: -1, num_hidden_layers: 1, num_attention_heads: 2 }, 'c.json'),
    /"intermediate_size" must be a positive integer/);
  assert.throws(() => loadConfig('/nonexistent/config.json'), /file not found/);
});

test('unknown config fields survive a round trip', () => {
  const c = loadConfig(join(configs, 'qwen2.5-0.5b-instruct.json'));
  const hf = toHfConfig(c, 'bfloat16');
  assert.equal(hf.sliding_window, 32768);
  assert.equal(hf.eos_token_id, 151645);
  assert.equal(hf.torch_dtype, 'bfloat16');
});

test('rope_theta nested in rope_parameters (newer transformers) is read', () => {
  const c = parseConfig({ model_type: 'qwen2', vocab_size: 10, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, rope_parameters: { rope_theta: 1000000, rope_type: 'default' } });
  assert.equal(c.rope_theta, 1000000);
  assert.equal(c.rope_scaling, null);
  const l = parseConfig({ model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, rope_parameters: { rope_theta: 500000, rope_type: 'llama3', factor: 8 } });
  assert.equal(l.rope_theta, 500000);
  assert.equal(l.rope_scaling?.rope_type, 'llama3');
});

import { inverseFrequencies, ropeTables } from '../../engine/rope.ts';
test('rotary frequencies: plain theta^(-2j/d), and Llama 3 scaling on the low frequencies', () => {
  const q = loadConfig(join(configs, 'qwen2.5-0.5b-instruct.json'));
  const inv = inverseFrequencies(q);
  assert.equal(inv.length, 32);
  assert.equal(inv[0], 1);
  assert.ok(Math.abs(inv[16] - 1e6 ** -0.5) < 1e-9);
  const l = loadConfig(join(configs, 'llama-3.1-8b.json'));
  const li = inverseFrequencies(l);
  assert.equal(li[0], 1); // short wavelength: unchanged
  const plainLast = 500000 ** (-126 / 128);
  assert.ok(Math.abs(li[63] - plainLast / 8) / (plainLast / 8) < 1e-5); // long wavelength: divided by factor 8
  // A medium wavelength (between 8192/4 and 8192) is interpolated between inv/8 and inv.
  const j = [...li.keys()].find((i) => { const w = 2 * Math.PI / 500000 ** (-(2 * i) / 128); return w > 2048 && w < 8192; })!;
  const plain = Math.fround(500000 ** -Math.fround((2 * j) / 128));
  const s = (8192 / (2 * Math.PI / plain) - 1) / (4 - 1);
  assert.ok(Math.abs(li[j] - ((1 - s) * plain / 8 + s * plain)) / plain < 1e-5);
  const { cos, sin } = ropeTables([0, 3], new Float32Array([1, 0.5]));
  assert.deepEqual([...cos.subarray(0, 4)], [1, 1, 1, 1]);
  assert.ok(Math.abs(sin[4] - Math.sin(3)) < 1e-6 && Math.abs(sin[5] - Math.sin(1.5)) < 1e-6 && sin[6] === sin[4]);
});

test('RoPE tables: a repeated position gets the rows its first occurrence got', () => {
  const inv = new Float32Array([1, 0.25, 0.01]);
  const once = ropeTables([7, 0, 300], inv);
  const repeated = ropeTables([7, 0, 300, 0, 300, 7], inv);
  const rows = (t: Float32Array, order: number[]) => order.flatMap((i) => [...t.subarray(i * 6, i * 6 + 6)]);
  assert.deepEqual([...repeated.cos], rows(once.cos, [0, 1, 2, 1, 2, 0]));
  assert.deepEqual([...repeated.sin], rows(once.sin, [0, 1, 2, 1, 2, 0]));
});
