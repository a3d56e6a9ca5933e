/**
 * rl.ppo: per-token rewards and GAE targets on hand numbers, the value model (a zero linear
 * head on the final hidden state at the start), and the job end to end, including a stop
 * request (SIGTERM path: checkpoint, then exit) followed by an exact resume.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../engine/backend.ts';
import { buildSequences } from '../../rl/batch.ts';
import { loadValueModel, ppoTargets, valuesOf } from '../../rl/ppo.ts';
import { run } from '../../jobs/rl.ppo.ts';
import { recordingContext } from '../data/job-ctx.ts';
import { tempDir } from '../train/helpers.ts';
import { trainPolicy } from './fixture.ts';

const dir = tempDir('ppo-test');
let fx: { policy: string; verifiable: string };
before(async () => {
  await initBackend();
  fx = await trainPolicy(dir);
});

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('ppo targets: KL-shaped token rewards, the score on the last token, GAE with gamma 1 and lambda 0.95', () => {
  const seq = buildSequences([[1, 2]], [[3, 4, 5]], 0);
  const old = [[0, 0, -1.0, -2.0, -0.5]];
  const ref = [[0, 0, -1.1, -2.0, -0.4]]; // log pi_old - log pi_ref = [0.1, 0, -0.1]
  const values = [[0, 0, 0.5, 0.2, 0.4]];
  const t = ppoTargets(seq, [3], [1], old, ref, values, { klCoef: 0.5, gamma: 1, lam: 0.95 });
  // rewards [-0.05, 0, 0.05 + 1]; A_2 = 1.05 - 0.4 = 0.65; A_1 = 0.2 + 0.95 * 0.65 = 0.8175;
  // A_0 = (-0.05 + 0.2 - 0.5) + 0.95 * 0.8175 = 0.426625; returns = A + V.
  assert.deepEqual(t.returns[0].slice(0, 2), [0, 0]);
  [0.926625, 1.0175, 1.05].forEach((r, i) => close(t.returns[0][2 + i], r));
  const raw = [0.426625, 0.8175, 0.65];
  const mean = raw.reduce((a, b) => a + b) / 3;
  const sd = Math.sqrt(raw.reduce((a, x) => a + (x - mean) ** 2, 0) / 2);
  raw.forEach((a, i) => close(t.advantages[0][2 + i], (a - mean) / sd, 1e-4));
  close(t.kl, 0);
});

test('the value model starts from the policy trunk with a zero head', async () => {
  const vm = await loadValueModel(fx.policy);
  assert.equal(vm.config.tie_word_embeddings, false);
  const seq = buildSequences([[1, 2]], [[3, 4]], 0);
  assert.ok(valuesOf(vm, seq).flat().every((v) => v === 0));
  vm.dispose();
});

const params = () => ({
  policy: fx.policy, data: fx.verifiable, verifier: { type: 'rule' }, temperature: 1.0, response_length: 40, max_prompt_len: 64,
  learning_rate: 3e-3, iterations: 3, batch_size: 8, mini_batch_size: 4, num_ppo_epochs: 2, save_every: 1, seed: 2,
});

test('a PPO run; a stop request checkpoints and exits; the resumed run ends with the same weights', async () => {
  const straight = recordingContext(params(), join(dir, 'straight'));
  const r = await run(straight);
  const metrics = straight.messages.flatMap((m) => (m.type === 'metric' ? [m.values] : []));
  assert.equal(metrics.length, 3);
  for (const k of ['reward_mean', 'accuracy', 'format_rate', 'kl', 'pg_loss', 'vf_loss', 'response_length']) assert.ok(k in metrics[0], k);
  assert.ok(metrics.some((m) => m.value_grad_norm > 0), 'the value model learns');
  assert.notEqual(Buffer.compare(readFileSync(join(fx.policy, 'model.safetensors')), readFileSync(join(r.checkpoint as string, 'model.safetensors'))), 0);

  const controller = new AbortController();
  const first = recordingContext(params(), join(dir, 'stopped'), controller.signal);
  let checkpoint: string | undefined;
  first.checkpoint = (path) => { checkpoint = path; controller.abort(); };
  await assert.rejects(run(first), /stopped at iteration 1 of 3/);
  assert.ok(checkpoint && existsSync(join(checkpoint, 'value', 'config.json')) && existsSync(join(checkpoint, 'value', 'optimizer.safetensors')));
  const cfg = JSON.parse(readFileSync(join(checkpoint, 'value', 'config.json'), 'utf8'));
  assert.equal(cfg.tie_word_embeddings, false);

  const second = recordingContext(params(), join(dir, 'stopped'));
  second.resumeFrom = checkpoint;
  const r2 = await run(second);
  assert.equal(Buffer.compare(readFileSync(join(r.checkpoint as string, 'model.safetensors')), readFileSync(join(r2.checkpoint as string, 'model.safetensors'))), 0);
});
