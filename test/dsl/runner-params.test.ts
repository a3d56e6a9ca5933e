/** Parameters a runner cannot honour are compile errors at their line, never silently dropped. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileText } from './helpers.ts';

const sft = (runner: string, extra: string) => `
name: p
steps:
  - id: sft
    uses: train.sft
    runner: ${runner}
    with:
      model: preset:tiny
      data: d.json
${extra}`;

const grpo = (runner: string, extra: string) => `
name: p
steps:
  - id: grpo
    uses: rl.grpo
    runner: ${runner}
    with:
      policy: m
      data: d.json
      verifier: { type: rule }
${extra}`;

test('accelerate: belongs to runner trl; the built-in runner refuses it at its line', () => {
  const text = sft('builtin', '      accelerate: { num_processes: 2 }');
  const r = compileText(text);
  assert.equal(r.plan, undefined);
  const d = r.errors.find((e) => e.message.includes('with.accelerate'));
  assert.ok(d, JSON.stringify(r.errors));
  assert.match(d.message, /belongs to runner: trl/);
  assert.equal(d.line, 10); // the `accelerate:` line
  const ok = compileText(sft('trl', '      accelerate: { num_processes: 2 }'));
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.plan?.steps[0].with.accelerate, { num_processes: 2 });
  assert.equal(ok.plan?.steps[0].runner, 'trl');
});

test('runner trl refuses a rollout server, a served verifier model and a KL estimator other than k3', () => {
  const rollout = compileText(grpo('trl', '      rollout: { base_url: "http://127.0.0.1:1/v1", model: m, weights: fixed }'));
  assert.match(rollout.errors.map((e) => e.message).join('\n'), /with\.rollout: runner: trl has no equivalent/);
  const kl = compileText(grpo('trl', '      kl_estimator: k1'));
  assert.match(kl.errors.map((e) => e.message).join('\n'), /with\.kl_estimator: .*k3 only/);
  assert.deepEqual(compileText(grpo('trl', '      kl_estimator: k3')).errors, []);
  assert.deepEqual(compileText(grpo('builtin', '      kl_estimator: k1')).errors, []);
  const served = compileText(grpo('trl', '').replace('verifier: { type: rule }', 'verifier: { type: model, base_url: "http://127.0.0.1:1/v1", served_model: v }'));
  assert.match(served.errors.map((e) => e.message).join('\n'), /with\.verifier\.base_url: .*give verifier\.model/);
});
