import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { causalLmLoss } from '../../engine/loss.ts';
import { accumulateGradients } from '../../engine/train.ts';
import { tinyConfig } from './tiny.ts';

before(async () => { await initBackend(); });

// The hand-written gradients (linear layers, embedding scatter-add, rotate-half, every
// registered kernel gradient) against central finite differences of the real loss.
for (const [label, overrides, block] of [
  ['qwen2, tied, grouped-query, attention in blocks of 2', {}, 2],
  ['llama, untied, all biases', { model_type: 'llama', tie_word_embeddings: false, attention_bias: true, mlp_bias: true, num_key_value_heads: 4 }, 64],
] as const) {
  test(`gradients match finite differences (${label})`, () => {
    const c = tinyConfig({ vocab_size: 24, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, initializer_range: 0.3, ...overrides });
    const model = new CausalLM(c).initRandom(21);
    model.attentionBlock = block;
    // Non-trivial norms and biases, so their gradients are exercised away from the initial values.
    for (const [name, v] of model.params) {
      if (name.endsWith('norm.weight') || name.endsWith('.bias')) {
        tf.tidy(() => v.assign(tf.add(v, tf.randomUniform(v.shape, -0.3, 0.3, 'float32', 5))));
      }
    }
    const ids = [[1, 4, 9, 16, 2, 3], [5, 5, 7, 0, 23, 11]];
    const mask = [[0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 0, 1]];
    const loss = () => { const l = causalLmLoss(model, ids, mask); const v = l.dataSync()[0]; l.dispose(); return v; };
    const { grads } = accumulateGradients(model, [0], (m) => causalLmLoss(m, ids, mask));
    const eps = 1e-2;
    let checked = 0;
    for (const [name, v] of model.params) {
      const g = grads.get(name)!.dataSync();
      let big = 0;
      for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[big])) big = i;
      for (const i of [big, (g.length * 7) >> 4]) {
        const data = v.dataSync().slice() as Float32Array;
        const orig = data[i];
        const at = (x: number) => { data[i] = x; tf.tidy(() => v.assign(tf.tensor(data, v.shape))); return loss(); };
        const numeric = (at(orig + eps) - at(orig - eps)) / (2 * eps);
        at(orig);
        assert.ok(Math.abs(numeric - g[i]) <= 2e-3 + 0.05 * Math.abs(numeric),
          `${name}[${i}]: analytic ${g[i]} vs numeric ${numeric}`);
        checked++;
      }
    }
    assert.ok(checked >= 2 * model.params.size);
    for (const g of grads.values()) g.dispose();
    model.dispose();
  });
}
