/**
 * Rollouts on a replica of the policy in a worker thread (rl/rollout-thread.ts): for a policy on
 * tensorflow, the thread samples on wasm exactly what the engine samples on wasm in this thread
 * with the same weights and seeds, follows the policy's updates, a larger rollout goes in slices
 * to several replicas with the same result as on one, and a replica that cannot start leaves the
 * sampling to this thread with a warning. Skipped without the native backend (then the
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
import { PARALLEL_ROLLOUT_MIN_TOKENS, rolloutReplicaLimit, rolloutSlices, rolloutThread, usesRolloutThread } from '../../rl/rollout-thread.ts';
import { availableParallelism, freemem } from 'node:os';
import { rolloutSource } from '../../rl/rollout.ts';
import { tinyConfig } from '../engine/tiny.ts';

const native = existsSync(join(import.meta.dirname, '..', '..', '.tools', 'tfjs-node', 'built.json'));
const skip = !native && 'no native backend in .tools/tfjs-node';

const req: TokenCompletionRequest = { prompts: [[5, 6, 7, 8], [9, 10, 11]], n: 3, maxTokens: 24, temperature: 0.9, topP: 0.95, seed: 7, stopTokenIds: [3] };

/** The policy's weights as its variables hold them. */
const weightsOf = (m: CausalLM) => new Map([...m.params].map(([n, v]) => [n, { shape: v.shape, data: (v.dataSync() as Float32Array).slice() }]));

/** What the engine samples on wasm in this thread with these weights (the backend switched back after). */
async function onWasmHere(config: CausalLM['config'], weights: ReturnType<typeof weightsOf>, sample = (m: CausalLM) => completeOnEngine(m, req)): Promise<TokenCompletion[]> {
  await initBackend('wasm');
  const m = new CausalLM(config);
  for (const [n, w] of weights) tf.tidy(() => m.params.get(n)!.assign(tf.tensor(w.data, w.shape)));
  const out = sample(m);
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

test('a rollout of more than 16 rows goes in even slices of rows, each row on its own stream, on as many replicas as it has slices (a long run)', { skip }, async () => {
  assert.deepEqual(rolloutSlices(6), [[0, 6]]);
  assert.deepEqual(rolloutSlices(16), [[0, 16]]);
  assert.deepEqual(rolloutSlices(40), [[0, 13], [13, 26], [26, 40]]);
  // More replicas than one only for a run that samples enough for them to warm up.
  assert.equal(rolloutReplicaLimit(PARALLEL_ROLLOUT_MIN_TOKENS - 1), 1);
  assert.equal(rolloutReplicaLimit(PARALLEL_ROLLOUT_MIN_TOKENS), Math.min(availableParallelism(), 8));
  assert.equal(rolloutReplicaLimit(), Math.min(availableParallelism(), 8));
  assert.equal(rolloutReplicaLimit(PARALLEL_ROLLOUT_MIN_TOKENS, freemem()), 1, 'no more replicas than half the free memory holds');
  await initBackend('tensorflow');
  const policy = new CausalLM(tinyConfig({ initializer_range: 0.5 })).initRandom(21);
  const big: TokenCompletionRequest = { ...req, prompts: Array.from({ length: 10 }, (_, i) => [5 + i, 6, 7 + (i % 3), 8].slice(0, 2 + (i % 3))), n: 4 };
  const rows = big.prompts.flatMap((p) => [p, p, p, p]);
  // What the engine samples on wasm here, slice by slice: rows 13.., for instance, from the streams of rows 13...
  const expected = await onWasmHere(policy.config, weightsOf(policy), (m) =>
    rolloutSlices(40).flatMap(([start, end]) => completeOnEngine(m, { ...big, prompts: rows.slice(start, end), n: 1 }, undefined, start)));
  const got: Record<string, TokenCompletion[]> = {};
  for (const threads of ['2', '1']) {
    process.env.DOCTOR_AGENT_ROLLOUT_THREADS = threads;
    const pool = rolloutThread(policy, { rows: 40 })!;
    delete process.env.DOCTOR_AGENT_ROLLOUT_THREADS;
    try {
      assert.equal(pool.replicas(), Number(threads), 'the replicas the rollouts need start with the pool');
      got[threads] = await pool.complete(big);
      assert.equal(pool.replicas(), Number(threads));
      assert.match(pool.where, threads === '2' ? /^2 replicas of the policy in rollout threads$/ : /^a replica of the policy in a rollout thread$/);
    } finally {
      await pool.close();
    }
  }
  assert.equal(got['2'].length, 40);
  assert.deepEqual(got['2'], expected, 'two replicas sample the slices as the engine does here');
  assert.deepEqual(got['1'], got['2'], 'one replica samples the same rollout');
  // The first slice's rows draw from the whole rollout's first streams: as one call of its 13 rows.
  const whole = await onWasmHere(policy.config, weightsOf(policy), (m) => completeOnEngine(m, { ...big, prompts: rows.slice(0, 13), n: 1 }));
  assert.deepEqual(got['2'].slice(0, 13), whole);

  process.env.DOCTOR_AGENT_ROLLOUT_THREADS = '0';
  try {
    assert.throws(() => rolloutThread(policy), /DOCTOR_AGENT_ROLLOUT_THREADS=0: expected a whole number of threads, 1 or more/);
  } finally {
    delete process.env.DOCTOR_AGENT_ROLLOUT_THREADS;
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
