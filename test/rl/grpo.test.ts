/**
 * rl.grpo: reward wiring through the real rule verifier, the update moving probability
 * towards positive-advantage responses, and the job end to end (iterations, metrics,
 * checkpoints, weights changed, exact resume after SIGKILL in a child process).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../../common/rng.ts';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { AdamW } from '../../engine/optim.ts';
import { huatuoReward, makeVerifier } from '../../data/verifiers.ts';
import { buildSequences, broadcast, tokenLogProbs } from '../../rl/batch.ts';
import { grpoUpdate } from '../../rl/grpo.ts';
import { rewardOf, score } from '../../rl/score.ts';
import { run } from '../../jobs/rl.grpo.ts';
import { recordingContext } from '../data/job-ctx.ts';
import { tinyConfig } from '../engine/tiny.ts';
import { startJob, tempDir } from '../train/helpers.ts';
import { trainPolicy } from './fixture.ts';

const dir = tempDir('grpo-test');
let fx: { policy: string; verifiable: string };
before(async () => {
  await initBackend();
  fx = await trainPolicy(dir);
});

const item = { 'Open-ended Verifiable Question': 'Which organ?', 'Ground-True Answer': 'Myocardial infarction' };

test('scoring: the verifier sees only the final response; 1 / 0.1 / 0 as HuatuoGPT-o1 maps them', async () => {
  const texts = [
    '## Thinking\n\nhmm\n\n## Final Response\n\nIt is a myocardial infarction.',
    // The thinking names the answer but the final response does not: wrong.
    '## Thinking\n\nMyocardial infarction?\n\n## Final Response\n\nPneumonia.',
    // No "## Thinking": malformed even though correct.
    'Final answer.\n\n## Final Response\n\nMyocardial infarction',
    // "## Final Response" twice: malformed.
    '## Thinking\n\n## Final Response\n\nx\n\n## Final Response\n\nMyocardial infarction',
  ];
  const s = await score(texts, [item], [0, 0, 0, 0], makeVerifier({ type: 'rule' }));
  assert.deepEqual(s.rewards, [1, 0.1, 0, 0]);
  assert.deepEqual(s.correct, [true, false, true, true]);
  assert.deepEqual(s.formatted, [true, true, false, false]);
  texts.forEach((t, i) => assert.equal(s.rewards[i], huatuoReward(t, s.correct[i])));
  const custom = await score(texts, [item], [0, 0, 0, 0], makeVerifier({ type: 'rule' }), { correct: 2, wrong: -1, malformed: -3 });
  assert.deepEqual(custom.rewards, [2, -1, -3, -3]);
  assert.equal(rewardOf(texts[0], false), 0.1);
});

test('an update raises the log-prob of the positive-advantage response and lowers the other', () => {
  const model = new CausalLM(tinyConfig()).initRandom(1);
  const seq = buildSequences([[1, 2, 3], [1, 2, 3]], [[5, 6, 7, 8], [9, 10]], 0);
  const before = tokenLogProbs(model, seq);
  const sum = (rows: number[][]) => rows.map((r) => r.reduce((a, b) => a + b, 0));
  const opt = new AdamW(model.params, { weightDecay: 0 });
  const stats = grpoUpdate(model, opt, { ...seq, advantages: broadcast([1, -1], seq.mask), oldLogp: before, refLogp: before }, {
    lr: 0.01, temperature: 1, clip: 0.2, klCoef: 0.03, epochs: 2, miniBatchSize: 2, maxGradNorm: 1,
  }, new Rng(0));
  const after = tokenLogProbs(model, seq);
  assert.ok(sum(after)[0] > sum(before)[0], `${sum(before)[0]} → ${sum(after)[0]}`);
  assert.ok(sum(after)[1] < sum(before)[1], `${sum(before)[1]} → ${sum(after)[1]}`);
  assert.equal(stats.steps, 2);
  assert.ok(stats.kl > 0, 'the second epoch has moved away from the reference');
  // Prompt tokens and padding are never scored.
  assert.ok(after[1].slice(0, 3).every((x) => x === 0));
  assert.ok(after[1].slice(5).every((x) => x === 0));
});

const params = () => ({
  policy: fx.policy, data: fx.verifiable, verifier: { type: 'rule' }, num_generations: 4, temperature: 1.0, response_length: 40,
  max_prompt_len: 64, learning_rate: 3e-3, kl_coef: 0.03, iterations: 3, prompts_per_iteration: 4, mini_batch_size: 8, save_every: 1, seed: 1,
});

test('a GRPO run: metrics per iteration, checkpoints with trainer state, weights changed', async () => {
  const out = join(dir, 'inproc');
  const ctx = recordingContext(params(), out);
  const r = await run(ctx);
  const metrics = ctx.messages.flatMap((m) => (m.type === 'metric' ? [m.values] : []));
  assert.equal(metrics.length, 3);
  for (const k of ['reward_mean', 'accuracy', 'format_rate', 'kl', 'loss', 'response_length']) assert.ok(k in metrics[0], k);
  assert.ok(metrics.some((m) => m.reward_mean > 0 && m.grad_norm > 0), 'some group had different rewards');
  const lines = readFileSync(r.metrics as string, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.iteration), [1, 2, 3]);
  const cps = ctx.messages.flatMap((m) => (m.type === 'checkpoint' ? [m.path] : []));
  assert.equal(cps.length, 2);
  assert.ok(existsSync(join(cps[1], 'trainer_state.json')) && existsSync(join(cps[1], 'optimizer.safetensors')));
  const a = readFileSync(join(fx.policy, 'model.safetensors'));
  const b = readFileSync(join(r.checkpoint as string, 'model.safetensors'));
  assert.notEqual(Buffer.compare(a, b), 0, 'the policy changed');
  assert.ok(existsSync(join(r.checkpoint as string, 'tokenizer.json')));
});

test('GRPO: SIGKILL after a checkpoint, resume on another number of rollout replicas: final weights bit-identical', async () => {
  // 4 prompts x 6 generations: each rollout goes in two slices of rows, sampled one after the other
  // by one replica before the kill and by two replicas at once after it (a machine with more cores).
  const job = (name: string, resumeFrom?: string) =>
    ({ kind: 'rl.grpo', runId: 'r', stepId: name, params: { ...params(), num_generations: 6 }, outDir: join(dir, name), attempt: resumeFrom ? 2 : 1, resumeFrom });
  const sampledBy = (logs: string[]) => logs.find((l) => l.startsWith('rollouts: sampled by'));
  const logs: Record<string, string[]> = { straight: [], resumed: [] };
  process.env.DOCTOR_AGENT_ROLLOUT_THREADS = '1';
  let straight, killed;
  let checkpoint: string | undefined;
  try {
    straight = startJob(job('straight'), (m) => void (m.type === 'log' && logs.straight.push(m.message)));
    killed = startJob(job('killed'), (m, child) => {
      if (m.type === 'checkpoint' && !checkpoint) { checkpoint = m.path; child.kill('SIGKILL'); }
    });
  } finally {
    delete process.env.DOCTOR_AGENT_ROLLOUT_THREADS;
  }
  assert.equal(await straight.done, 0);
  assert.equal(await killed.done, null);
  assert.ok(checkpoint);
  process.env.DOCTOR_AGENT_ROLLOUT_THREADS = '2';
  let resumed;
  try {
    resumed = startJob(job('killed', checkpoint), (m) => void (m.type === 'log' && logs.resumed.push(m.message)));
  } finally {
    delete process.env.DOCTOR_AGENT_ROLLOUT_THREADS;
  }
  assert.equal(await resumed.done, 0);
  // Where the policy trains on tensorflow, a replica thread samples (else the policy itself, in both runs).
  if (/rollout thread/.test(sampledBy(logs.straight) ?? '')) {
    assert.match(sampledBy(logs.straight)!, /by a replica of the policy in a rollout thread/);
    assert.match(sampledBy(logs.resumed)!, /by 2 replicas of the policy in rollout threads/);
  } else {
    assert.equal(sampledBy(logs.resumed), sampledBy(logs.straight));
  }
  const a = readFileSync(join(dir, 'straight', 'checkpoint', 'model.safetensors'));
  const b = readFileSync(join(dir, 'killed', 'checkpoint', 'model.safetensors'));
  assert.equal(Buffer.compare(a, b), 0);
  const m1 = readFileSync(join(dir, 'straight', 'iterations.jsonl'), 'utf8').split('\n').map((l) => l.replace(/"(rollout_s|update_s)":[0-9.e-]+/g, ''));
  const m2 = readFileSync(join(dir, 'killed', 'iterations.jsonl'), 'utf8').split('\n').map((l) => l.replace(/"(rollout_s|update_s)":[0-9.e-]+/g, ''));
  assert.deepEqual(m2, m1, 'the same iterations, rewards and losses');
});

test('GRPO checkpoints by wall-clock time too: save_every_minutes before save_every iterations', async () => {
  const ctx = recordingContext({ ...params(), save_every: 1000, save_every_minutes: 1e-6 }, join(dir, 'timed'));
  await run(ctx);
  const cps = ctx.messages.flatMap((m) => (m.type === 'checkpoint' ? [m.step] : []));
  assert.deepEqual(cps, [1, 2], 'a checkpoint after every iteration but the last (the final folder is written then)');
  const off = recordingContext({ ...params(), save_every: 1000, save_every_minutes: 0 }, join(dir, 'untimed'));
  await run(off);
  assert.equal(off.messages.filter((m) => m.type === 'checkpoint').length, 0);
});
