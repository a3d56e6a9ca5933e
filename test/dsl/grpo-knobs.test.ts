/** rl.grpo's TRL-named knobs in a compiled pipeline: the earlier names, both at once, the values a plan holds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileText } from './helpers.ts';

const pipeline = (knobs: string) => `name: g
steps:
  - id: grpo
    uses: rl.grpo
    with:
      policy: p
      data: d.json
      verifier: { type: rule }
${knobs}`;

test('a plan holds the knobs under TRL\'s names, filled in, whichever names the pipeline used', () => {
  const grpo = (knobs: string) => compileText(pipeline(knobs)).plan!.steps[0].with;
  const defaults = grpo('');
  assert.deepEqual(
    [defaults.loss_type, defaults.scale_rewards, defaults.epsilon, defaults.epsilon_high, defaults.beta, defaults.num_iterations, defaults.kl_estimator],
    ['dapo', 'group', 0.2, 0.2, 0.03, 1, 'k3'],
  );
  const earlier = grpo('      clip_range: 0.1\n      kl_coef: 0.05\n      epochs_per_iteration: 2\n      scale_rewards: false\n');
  assert.deepEqual([earlier.epsilon, earlier.epsilon_high, earlier.beta, earlier.num_iterations, earlier.scale_rewards], [0.1, 0.1, 0.05, 2, 'none']);
  for (const k of ['clip_range', 'kl_coef', 'epochs_per_iteration']) assert.ok(!(k in earlier), k);
  const trl = grpo('      epsilon: 0.1\n      beta: 0.05\n      num_iterations: 2\n      scale_rewards: none\n');
  assert.deepEqual(trl, earlier);
  const dapo = grpo('      loss_type: dr_grpo\n      epsilon: 0.2\n      epsilon_high: 0.28\n      scale_rewards: batch\n');
  assert.deepEqual([dapo.loss_type, dapo.epsilon, dapo.epsilon_high, dapo.scale_rewards], ['dr_grpo', 0.2, 0.28, 'batch']);
});

test('a knob given under both names is an error at the earlier one that says which to keep', () => {
  const r = compileText(pipeline('      epsilon: 0.2\n      kl_coef: 0.03\n      clip_range: 0.2\n      beta: 0.03\n'));
  assert.equal(r.plan, undefined);
  const found = r.errors.map((e) => [e.line, e.col, e.message]);
  assert.deepEqual(found, [
    [10, 16, "with.kl_coef: kl_coef is the earlier name of beta, which is also given: keep beta (TRL's name) and remove kl_coef"],
    [11, 19, "with.clip_range: clip_range is the earlier name of epsilon, which is also given: keep epsilon (TRL's name) and remove clip_range"],
  ]);
  const bad = compileText(pipeline('      loss_type: bnpo\n      scale_rewards: std\n'));
  assert.equal(bad.errors.length, 2);
  assert.match(bad.errors[0].message, /with\.loss_type: .*"grpo".*"dr_grpo".*"dapo"/);
  assert.equal(bad.errors[0].line, 9);
});
