/**
 * Rollouts on a replica of the policy in a worker thread (rl/rollout-thread.ts): for a policy on
 * tensorflow, the thread samples on wasm exactly what the engine samples on wasm in this thread
 * with the same weights and seeds, follows the policy's updates, and a replica that cannot start
 * leaves the sampling to this thread with a warning. Skipped without the native backend (then the
 * policy trains on wasm and samples in-process).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { completeOnEngine } from '../../evaluation/completions.ts';
import type { TokenCompletion, TokenCompletionRequest } from '../../evaluation/backend.ts';
import { rolloutThread, usesRolloutThread } from '../../rl/rollout-thread.ts';
import { rolloutSource } from '../../rl/rollout.ts';
import { tinyConfig } from '../engine/tiny.ts';

const native = existsSync(join(import.meta.dirname, '..', '..', '.tools', 'tfjs-node', 'built.json'));
const skip = !native && 'no native backend in .tools/tfjs-node';

const req: TokenCompletionRequest = { prompts: [[5, 6, 7, 8], [9, 10, 11]], n: 3, maxTokens: 24, temperature: 0.9, topP: 0.95, seed: 7, stopTokenIds: [3] };

/** The policy's weights as its variables hold them. */
const weightsOf = (m: CausalLM) => new Map([...m.params].map(([n, v]) => [n, { shape: v.shape, data: (v.dataSync() as Float32Array).slice() }]));

/** What the engine samples on wasm in this thread with these weights (the backend switched back after). */
async function onWasmHere(config: CausalLM['config'], weights: ReturnType<typeof weightsOf>): Promise<TokenCompletion[]> {
  await initBackend('wasm');
  const m = new CausalLM(config);
  for (const [n, w] of weights) tf.tidy(() => m.params.get(n)!.assign(tf.tensor(w.data, w.shape)));
  const out = completeOnEngine(m, req);
  m.dispose();
  await initBackend('tensorflow');
  return out;
}

test('a policy on tensorflow samples on a wasm replica what wasm samples here, and the replica follows its updates', { skip }, async () => {
  await initBackend('tensorflow');
  const policy = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(11);
  assert.equal(usesRolloutThread(policy), true);
  const thread = rolloutThread(policy)!;
  try {
    const first = await thread.complete(req);
    assert.equal(thread.backend(), 'wasm');
    assert.equal(first.length, 6);
    assert.deepEqual(first, await onWasmHere(policy.config, weightsOf(policy)));
    // An update (new data in every variable): the next rollout samples the new weights.
    for (const v of policy.params.values()) tf.tidy(() => v.assign(tf.mul(v, 1.5)));
    const second = await thread.complete(req);
    assert.deepEqual(second, await onWasmHere(policy.config, weightsOf(policy)));
    assert.notDeepEqual(second.map((c) => c.tokens), first.map((c) => c.tokens), 'other weights, other samples');
  } finally {
    await thread.close();
    policy.dispose();
  }
});

test('no replica where it does not pay or is turned off; one that cannot start leaves the sampling here, with a warning', { skip }, async () => {
  await initBackend('tensorflow');
  const policy = new CausalLM(tinyConfig()).initRandom(12);
  const tok = { batchPadId: 0 } as Parameters<typeof rolloutSource>[2];
  process.env.DOCTOR_AGENT_ROLLOUT_THREAD = '0';
  try {
    assert.equal(rolloutThread(policy), undefined);
  } finally {
    delete process.env.DOCTOR_AGENT_ROLLOUT_THREAD;
  }
  await initBackend('wasm');
  assert.equal(rolloutThread(policy), undefined, 'a policy on wasm samples in-process');
  await initBackend('tensorflow');

  // The replica's thread finds no backend it may use (forced to one that does not exist).
  const warnings: string[] = [];
  process.env.DOCTOR_AGENT_BACKEND = 'none';
  const source = rolloutSource(undefined, policy, tok, (m) => warnings.push(m));
  delete process.env.DOCTOR_AGENT_BACKEND;
  try {
    const got = await source.complete(req);
    assert.deepEqual(got, completeOnEngine(policy, req, 0));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /the rollout thread did not start: DOCTOR_AGENT_BACKEND=none is not a backend.*rollouts are sampled in this process from now on/);
    assert.equal(source.where, 'the in-process engine');
  } finally {
    await source.close?.();
    policy.dispose();
  }
});
