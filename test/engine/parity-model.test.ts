/**
 * Model parity with transformers: the fixture folders (tiny random Qwen2 and Llama, F32/BF16/F16)
 * and their reference logits and greedy continuations come from transformers + torch
 * (scripts/parity/make_fixture.py). Here our loader, forward pass and generation run on the same
 * files. Logits must agree within 1e-4; greedy tokens exactly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { loadModel, saveModel } from '../../engine/checkpoint.ts';
import { generate } from '../../engine/generate.ts';
import type { CausalLM } from '../../engine/model.ts';
import { readJsonFile } from '../../common/fs.ts';
import { maxAbsDiff } from './tiny.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/parity/', import.meta.url));
const TOL = 1e-4;

interface ModelRef {
  input_ids: number[][];
  last_logits: string;
  probe_ids: number[];
  probe_logits: string;
  position_sums: string;
  prompts: number[][];
  greedy: number[][];
}

const ref = readJsonFile<{ models: Record<string, ModelRef> }>(FIXTURE + 'reference.json').models;

function f32(b64: string): Float32Array {
  const buf = Buffer.from(b64, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Logits [B, T, V] of the reference input ids, as a flat array. */
function logitsOf(model: CausalLM, ids: number[][]): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d(ids, [ids.length, ids[0].length], 'int32')).dataSync() as Float32Array);
}

function compareLogits(name: string, r: ModelRef, logits: Float32Array, V: number): void {
  const [B, T] = [r.input_ids.length, r.input_ids[0].length];
  const last = new Float32Array(B * V);
  const probes = new Float32Array(B * T * r.probe_ids.length);
  const sums = new Float32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      if (t === T - 1) last.set(row, b * V);
      r.probe_ids.forEach((id, k) => (probes[(b * T + t) * r.probe_ids.length + k] = row[id]));
      let s = 0;
      for (let v = 0; v < V; v++) s += row[v];
      sums[b * T + t] = s;
    }
  }
  const dLast = maxAbsDiff(last, f32(r.last_logits));
  const dProbe = maxAbsDiff(probes, f32(r.probe_logits));
  const dSum = maxAbsDiff(sums, f32(r.position_sums));
  assert.ok(dLast < TOL, `${name}: last-position logits differ by ${dLast}`);
  assert.ok(dProbe < TOL, `${name}: logits at the probe ids differ by ${dProbe}`);
  assert.ok(dSum < V * TOL, `${name}: per-position logit sums differ by ${dSum}`);
}

let dir: string;
before(async () => {
  await initBackend();
  dir = mkdtempSync(join(tmpdir(), 'parity-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

for (const name of ['qwen2-f32', 'qwen2-bf16', 'llama-f32', 'llama-f16']) {
  test(`parity ${name}: logits match transformers within 1e-4`, async () => {
    const r = ref[name];
    const { model, config } = await loadModel(FIXTURE + name);
    try {
      compareLogits(name, r, logitsOf(model, r.input_ids), config.vocab_size);
    } finally {
      model.dispose();
    }
  });

  test(`parity ${name}: batched greedy generation of ragged prompts matches transformers exactly`, async () => {
    const r = ref[name];
    const { model } = await loadModel(FIXTURE + name);
    try {
      assert.ok(new Set(r.prompts.map((p) => p.length)).size > 1, 'the prompts have different lengths');
      const maxNewTokens = r.greedy[0].length;
      for (const useCache of [true, false]) {
        const out = generate(model, r.prompts, { maxNewTokens, temperature: 0, useCache, padTokenId: 0 });
        assert.deepEqual(out.tokens, r.greedy, `useCache=${useCache}`);
      }
    } finally {
      model.dispose();
    }
  });
}

test('parity: a model saved by saveModel (F32) reloads with the same logits', async () => {
  const r = ref['llama-f16'];
  const { model, config } = await loadModel(FIXTURE + 'llama-f16');
  const out = join(dir, 'saved');
  try {
    await saveModel(model, out, { tokenizerDir: FIXTURE + 'tokenizer' });
  } finally {
    model.dispose();
  }
  const again = await loadModel(out);
  try {
    assert.equal(again.config.rope_theta, config.rope_theta);
    assert.deepEqual(again.config.rope_scaling, config.rope_scaling);
    compareLogits('llama-f16 saved as F32', r, logitsOf(again.model, r.input_ids), config.vocab_size);
  } finally {
    again.model.dispose();
  }
});
