import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { toHfConfig } from '../../engine/config.ts';
import { CausalLM } from '../../engine/model.ts';
import { loadModel, saveModel } from '../../engine/checkpoint.ts';
import { openSafetensors, writeSafetensors } from '../../engine/safetensors.ts';
import { tinyConfig } from './tiny.ts';

before(async () => { await initBackend(); });
const root = mkdtempSync(join(tmpdir(), 'checkpoint-test-'));
const input = () => tf.tensor2d([[3, 1, 4, 1, 5, 9, 2, 6]], [1, 8], 'int32');

/** A folder holding the given tensors (HF layout) and config, written with the library. */
function folder(name: string, config: object, tensors: Map<string, { shape: number[]; data: Float32Array }>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeSafetensors(join(dir, 'model.safetensors'), [...tensors].map(([n, w]) => ({ name: n, ...w })));
  return dir;
}

test('save then load gives identical logits and a complete Hugging Face folder', async () => {
  const tok = join(root, 'tok');
  mkdirSync(tok, { recursive: true });
  writeFileSync(join(tok, 'tokenizer.json'), '{"version":"1.0"}');
  writeFileSync(join(tok, 'tokenizer_config.json'), '{"chat_template":"{{ messages }}"}');
  const model = new CausalLM(tinyConfig({ eos_token_id: 2 })).initRandom(31);
  const dir = join(root, 'saved');
  await saveModel(model, dir, { tokenizerDir: tok, extraFiles: { 'trainer_state.json': '{"step":3}' } });
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'trainer_state.json']);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'qwen2');
  assert.deepEqual(cfg.architectures, ['Qwen2ForCausalLM']);
  assert.equal(cfg.torch_dtype, 'float32');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')), { eos_token_id: 2 });
  // PyTorch layout in the file: q_proj.weight is [out, in].
  const f = openSafetensors(join(dir, 'model.safetensors'));
  assert.deepEqual(f.tensors.get('model.layers.0.self_attn.k_proj.weight')?.shape, [16, 32]);
  assert.equal(f.tensors.has('lm_head.weight'), false);
  f.close();

  const { model: loaded, config } = await loadModel(dir);
  assert.equal(config.hidden_size, 32);
  assert.deepEqual(loaded.forward(input()).dataSync(), model.forward(input()).dataSync());
  loaded.dispose();
  model.dispose();
});

test('BF16 save loads back within bfloat16 precision', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(32);
  const dir = join(root, 'bf16');
  await saveModel(model, dir, { dtype: 'BF16' });
  assert.equal(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  const { model: loaded } = await loadModel(dir);
  const a = loaded.getWeights().get('model.layers.1.mlp.down_proj.weight')!.data;
  const b = model.getWeights().get('model.layers.1.mlp.down_proj.weight')!.data;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(b[i]) / 128 + 1e-30);
});

test('sharded checkpoints load through model.safetensors.index.json', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(33);
  const w = model.getWeights();
  const dir = join(root, 'sharded');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
  const names = [...w.keys()];
  const half = Math.ceil(names.length / 2);
  const shards = [names.slice(0, half), names.slice(half)];
  const weightMap: Record<string, string> = {};
  shards.forEach((group, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeSafetensors(join(dir, file), group.map((n) => ({ name: n, ...w.get(n)! })));
    for (const n of group) weightMap[n] = file;
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const { model: loaded } = await loadModel(dir);
  assert.deepEqual(loaded.forward(input()).dataSync(), model.forward(input()).dataSync());
});

test('loading reports the tensor and what was expected', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(34);
  const config = toHfConfig(model.config);

  const wrongShape = model.getWeights();
  wrongShape.set('model.layers.1.self_attn.q_proj.weight', { shape: [32, 16], data: new Float32Array(512) });
  await assert.rejects(loadModel(folder('wrong-shape', config, wrongShape)),
    /tensor "model\.layers\.1\.self_attn\.q_proj\.weight" has shape \[32,16\], expected \[32,32\] \(config\.json: hidden_size=32/);

  const missing = model.getWeights();
  missing.delete('model.layers.0.mlp.up_proj.weight');
  await assert.rejects(loadModel(folder('missing', config, missing)),
    /missing tensor "model\.layers\.0\.mlp\.up_proj\.weight" \(expected shape \[64,32\]\)/);

  const extra = model.getWeights();
  extra.set('model.layers.2.input_layernorm.weight', { shape: [32], data: new Float32Array(32) });
  await assert.rejects(loadModel(folder('extra', config, extra)),
    /unexpected tensor "model\.layers\.2\.input_layernorm\.weight": the checkpoint does not match config\.json .*num_hidden_layers=2/);

  // The final norm stored as float64 (the right shape, an unsupported dtype), the file written by hand.
  const dir = join(root, 'bad-dtype');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const header: Record<string, unknown> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, w] of model.getWeights()) {
    const bytes = name === 'model.norm.weight'
      ? Buffer.from(new Float64Array(w.data).buffer)
      : Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength);
    header[name] = { dtype: name === 'model.norm.weight' ? 'F64' : 'F32', shape: w.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([len, json, ...chunks]));
  await assert.rejects(loadModel(dir), /tensor "model\.norm\.weight" has dtype F64; only F32, F16 and BF16 can be loaded/);

  await assert.rejects(loadModel(join(root, 'nowhere')), /config\.json: file not found/);
  const noWeights = join(root, 'no-weights');
  mkdirSync(noWeights, { recursive: true });
  writeFileSync(join(noWeights, 'config.json'), JSON.stringify(config));
  await assert.rejects(loadModel(noWeights), /no model\.safetensors or model\.safetensors\.index\.json/);
});

test('a failed save leaves the previous checkpoint intact and no temporary folder', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(35);
  const dir = join(root, 'keep');
  await saveModel(model, dir);
  const before = readFileSync(join(dir, 'model.safetensors'));
  const other = new CausalLM(tinyConfig()).initRandom(36);
  await assert.rejects(saveModel(other, dir, { tokenizerDir: join(root, 'no-tokenizer-here') }), /no tokenizer\.json to copy/);
  assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), before);
  assert.deepEqual(readdirSync(root).filter((n) => n.includes('.tmp-')), []);
  // A successful save replaces it.
  await saveModel(other, dir);
  assert.notDeepEqual(readFileSync(join(dir, 'model.safetensors')), before);
  assert.ok(existsSync(join(dir, 'config.json')));
  assert.deepEqual(readdirSync(root).filter((n) => n.includes('.tmp-')), []);
});
