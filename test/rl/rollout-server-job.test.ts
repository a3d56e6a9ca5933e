// rl.grpo with `rollout:` naming the built-in server on 127.0.0.1 that serves the starting policy:
// the iteration's rollouts come over /v1/completions and are the in-process ones for the same
// seed, so one iteration ends with the same metrics and bit-identical weights; the step warns
// that the trainer does not update the server's weights.
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../engine/backend.ts';
import { loadEngineBackend } from '../../evaluation/engine-backend.ts';
import { startServer, type RunningServer } from '../../evaluation/server.ts';
import { run } from '../../jobs/rl.grpo.ts';
import { recordingContext } from '../data/job-ctx.ts';
import { tempDir } from '../train/helpers.ts';
import { trainPolicy } from './fixture.ts';

const dir = tempDir('grpo-rollout-server');
let fx: { policy: string; verifiable: string };
let backend: Awaited<ReturnType<typeof loadEngineBackend>>;
let server: RunningServer;
before(async () => {
  await initBackend();
  fx = await trainPolicy(dir);
  backend = await loadEngineBackend(fx.policy);
  server = await startServer({ backend, maxBatch: 16, servedModelNames: ['policy'] });
});
after(async () => {
  await server?.close(1000);
  backend?.close();
});

const params = () => ({
  policy: fx.policy, data: fx.verifiable, verifier: { type: 'rule' }, num_generations: 4, temperature: 1.0, response_length: 40,
  max_prompt_len: 64, learning_rate: 3e-3, kl_coef: 0.03, iterations: 1, prompts_per_iteration: 4, mini_batch_size: 8, save_every: 100, seed: 1,
});
const metricsOf = (ctx: ReturnType<typeof recordingContext>) => ctx.messages.flatMap((m) => {
  if (m.type !== 'metric') return [];
  const { rollout_s: _r, update_s: _u, ...rest } = m.values;
  return [rest];
});

test('rl.grpo with rollout: a server gives the in-process iteration: the same metrics and weights', async () => {
  const local = recordingContext(params(), join(dir, 'in-process'));
  // In-process sampling on the policy itself, the engine the server here decodes with (by default a
  // policy on tensorflow samples on a wasm replica: test/rl/rollout-thread.test.ts).
  process.env.DOCTOR_AGENT_ROLLOUT_THREAD = '0';
  const a = await run(local).finally(() => delete process.env.DOCTOR_AGENT_ROLLOUT_THREAD);
  const remote = recordingContext({ ...params(), rollout: { base_url: `${server.url}/v1`, model: 'policy', weights: 'fixed' } }, join(dir, 'server'));
  const admitted = server.scheduler.stats.admitted;
  const b = await run(remote);
  assert.equal(server.scheduler.stats.admitted - admitted, 16, 'the 4 prompts × 4 generations were sampled by the server');
  const m = metricsOf(local);
  assert.equal(m.length, 1);
  assert.ok(m[0].finished_rate > 0, 'some responses ended with the end-of-turn token');
  assert.deepEqual(metricsOf(remote), m);
  assert.ok(readFileSync(join(a.checkpoint as string, 'model.safetensors')).equals(readFileSync(join(b.checkpoint as string, 'model.safetensors'))), 'the same weights');
  const warnings = remote.messages.flatMap((x) => (x.type === 'log' && x.level === 'warn' ? [x.message] : []));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /rollouts are sampled by model "policy" at http:\/\/127\.0\.0\.1:\d+\/v1.*does not update that server's weights.*weights: fixed/);
  assert.ok(!local.messages.some((x) => x.type === 'log' && x.level === 'warn'), 'in-process: no warning');
});

test('rl.grpo refuses a rollout server without the weights choice, naming the field', async () => {
  const ctx = recordingContext({ ...params(), rollout: { base_url: `${server.url}/v1`, model: 'policy' } }, join(dir, 'no-choice'));
  await assert.rejects(run(ctx), /rollout\.weights/);
});
