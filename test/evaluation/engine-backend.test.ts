// The server on the real engine: a tiny random Qwen2 model saved as a Hugging Face
// folder (with the parity fixture's tokenizer), decoded with continuous batching.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { generate } from '../../engine/generate.ts';
import * as tf from '../../engine/tf.ts';
import { loadEngineBackend } from '../../evaluation/engine-backend.ts';
import { Scheduler } from '../../evaluation/scheduler.ts';
import { startServer } from '../../evaluation/server.ts';
import { tinyModel } from './tiny-model.ts';

let dir: string;
let backend: Awaited<ReturnType<typeof loadEngineBackend>>;

before(async () => {
  // Larger initial weights than usual spread the logits, so greedy choices are clear-cut.
  dir = await tinyModel(7, { initializerRange: 0.3, context: 512 });
  backend = await loadEngineBackend(dir);
});
after(async () => {
  await backend?.close?.();
  rmSync(dirname(dir), { recursive: true, force: true });
});

const greedy = { temperature: 0, topP: 1, topK: 0, seed: 0 };

test('continuous batching decodes each sequence exactly as it would alone', async () => {
  const prompts = ['The heart has four chambers.', 'Fever', 'A patient presents with chest pain and shortness of breath.'].map((t) => backend.encode(t));
  const n = [40, 20, 8];
  // What each prompt gives alone, through the engine's own batch generator.
  const alone = prompts.map((p, i) => generate(backend.model, [p], { temperature: 0, maxNewTokens: n[i] }).tokens[0]);
  const ids = new Set(backend.eosTokenIds);
  const expected = alone.map((t) => {
    const stop = t.findIndex((x) => ids.has(x));
    return stop < 0 ? t : t.slice(0, stop);
  });
  const sched = new Scheduler(backend, { maxBatch: 4, admitWaitMs: 0 });
  const liveBefore = tf.memory().numTensors;
  // The second and third join while the first is running.
  const first = sched.submit({ promptIds: prompts[0], maxNewTokens: n[0], sampling: greedy });
  while (sched.stats.steps < 3) await new Promise((r) => setImmediate(r));
  assert.equal(sched.stats.running, 1, 'the first is still running when the others arrive');
  const rest = [1, 2].map((i) => sched.submit({ promptIds: prompts[i], maxNewTokens: n[i], sampling: greedy }));
  const got = await Promise.all([first, ...rest]);
  got.forEach((g, i) => assert.deepEqual(g.tokenIds, expected[i], `prompt ${i}`));
  assert.ok(sched.stats.maxRunning >= 2, `batched (max ${sched.stats.maxRunning})`);
  assert.ok(got.every((g) => g.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp))));
  await sched.drain();
  assert.equal(tf.memory().numTensors, liveBefore, 'the KV cache is freed when the batch empties');
});

test('chat completions over HTTP on the engine: usage, reproducible seeds, stop strings', async () => {
  const server = await startServer({ backend, maxBatch: 8 });
  try {
    const ask = async (extra: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'What causes anemia?' }], max_tokens: 16, ...extra }),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as any;
    };
    const [a, b, c] = await Promise.all([ask({ temperature: 0.9, seed: 5 }), ask({ temperature: 0.9, seed: 5 }), ask({ temperature: 0.9, seed: 6, logprobs: true })]);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    const promptIds = backend.encodeChat([{ role: 'user', content: 'What causes anemia?' }]);
    assert.equal(a.usage.prompt_tokens, promptIds.length);
    assert.ok(a.usage.completion_tokens >= 1 && a.usage.completion_tokens <= 16);
    assert.equal(c.choices[0].logprobs.content.length, c.usage.completion_tokens);
    // A stop string taken from a greedy answer cuts it there.
    const g = await ask({ temperature: 0 });
    const text: string = g.choices[0].message.content;
    assert.ok(text.length >= 4, JSON.stringify(text));
    const stop = text.slice(2, 4);
    const s = await ask({ temperature: 0, stop: [stop] });
    assert.equal(s.choices[0].message.content, text.slice(0, text.indexOf(stop)));
    assert.equal(s.choices[0].finish_reason, 'stop');
    assert.equal(s.choices[0].matched_stop, stop);
  } finally {
    await server.close(1000);
  }
});
