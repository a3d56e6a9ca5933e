/**
 * Golden Plans of the shipped pipelines. A change to a pipeline, a kind's schema or the compiler
 * shows up here as a diff; when it is intended, refresh the files with
 *   UPDATE_GOLDEN=1 node --import tsx --test test/golden/golden.test.ts
 * Plans are compiled from the repository root, so paths in them are relative to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileFile } from '../../dsl/compile.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const update = process.env.UPDATE_GOLDEN === '1';

const CASES: { name: string; file: string; set?: string[] }[] = [
  { name: 'huatuo', file: 'pipelines/huatuo.yaml' },
  { name: 'huatuo-grpo', file: 'pipelines/huatuo.yaml', set: ['rl=grpo'] },
  { name: 'huatuo-tiny', file: 'pipelines/huatuo-tiny.yaml' },
  { name: 'nightly-eval', file: 'pipelines/nightly-eval.yaml', set: ['checkpoint=runs/latest/grpo/checkpoint'] },
];

for (const c of CASES) {
  test(`golden plan: ${c.name}`, () => {
    const plan = compileFile(c.file, { cwd: root, set: c.set });
    const text = JSON.stringify(plan, null, 2) + '\n';
    const golden = `${root}test/golden/${c.name}.plan.json`;
    if (update) writeFileSync(golden, text);
    assert.ok(existsSync(golden), `missing ${golden}: run with UPDATE_GOLDEN=1`);
    assert.equal(text, readFileSync(golden, 'utf8'), `the plan of ${c.file} changed; if intended, run with UPDATE_GOLDEN=1`);
  });
}

test('the recipe values are in the compiled huatuo plan', () => {
  const plan = compileFile('pipelines/huatuo.yaml', { cwd: root });
  const step = (id: string) => plan.steps.find((s) => s.id === id)!;
  assert.equal(step('sft').with.learning_rate, 5e-6);
  assert.equal(step('sft').with.max_seq_len, 4096);
  assert.equal(step('sft').queue, 'gpu');
  assert.deepEqual(
    ['kl_coef', 'temperature', 'response_length', 'num_ppo_epochs', 'gamma', 'lam', 'clip_range'].map((k) => step('ppo').with[k]),
    [0.03, 0.5, 1300, 3, 1, 0.95, 0.2],
  );
  assert.equal(step('ppo').if, undefined);
  assert.equal(step('grpo').if, 'false');
  assert.equal(step('grpo').with.num_generations, 4);
  assert.deepEqual(step('grpo').with.reward, { correct: 1, wrong: 0.1, malformed: 0 });
  assert.equal((step('search').with.teacher as { model: string }).model, 'gpt-4o');
  assert.equal((step('search').with.verifier as { type: string }).type, 'llm');
  assert.equal(step('verifiable').with.method, 'llm');
  assert.equal(step('verifiable').with.filter, true);
  assert.equal(step('eval').with.temperature, 0.5);
  assert.equal(step('eval').if, 'steps.ppo.outputs.checkpoint || steps.grpo.outputs.checkpoint');
  assert.equal(step('eval').with.top_p, 0.9);
  const grpo = compileFile('pipelines/huatuo.yaml', { cwd: root, set: ['rl=grpo'] });
  assert.equal(grpo.steps.find((s) => s.id === 'ppo')!.if, 'false');
  assert.equal(grpo.steps.find((s) => s.id === 'grpo')!.if, undefined);
});

test('the demo skips the reasoning search unless a teacher is given, and SFT falls back to the knowledge base', () => {
  const plan = compileFile('pipelines/huatuo-tiny.yaml', { cwd: root });
  const step = (id: string) => plan.steps.find((s) => s.id === id)!;
  assert.deepEqual(plan.steps.map((s) => s.id), ['kb', 'verifiable', 'search', 'sft', 'grpo', 'eval_sft', 'eval']);
  // The SFT checkpoint is evaluated as the GRPO one is, on the same items: only the model differs.
  const { model: sftModel, ...sftEval } = step('eval_sft').with;
  const { model: rlModel, ...rlEval } = step('eval').with;
  assert.equal(sftModel, '${{ steps.sft.outputs.checkpoint }}');
  assert.equal(rlModel, '${{ steps.grpo.outputs.checkpoint }}');
  assert.deepEqual(sftEval, rlEval);
  assert.equal(step('search').if, 'false');
  assert.equal(step('sft').with.data, '${{ steps.search.outputs.sft || steps.kb.outputs.sft }}');
  assert.equal(step('sft').if, 'steps.search.outputs.sft || steps.kb.outputs.sft', 'runs although its need search is skipped');
  assert.equal(step('sft').with.model, 'preset:tiny');
  assert.ok(plan.steps.every((s) => s.queue === 'cpu'));
  const withTeacher = compileFile('pipelines/huatuo-tiny.yaml', { cwd: root, set: ['teacher_base_url=http://127.0.0.1:30000/v1'] });
  assert.equal(withTeacher.steps.find((s) => s.id === 'search')!.if, undefined);
});
