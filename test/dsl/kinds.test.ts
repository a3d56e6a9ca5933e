/** The step-kind registry: what every kind declares, and that its schema is strict and has sane defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allKinds, getKind } from '../../dsl/kinds/index.ts';
import { fillDefaults } from '../../dsl/compile.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

test('the registry holds the recipe kinds with one-line descriptions, queues and outputs', () => {
  const names = allKinds().map((k) => k.name);
  assert.deepEqual(names, ['data.knowledge_base', 'data.construct_verifiable', 'data.search_reasoning', 'train.sft', 'rl.grpo', 'rl.ppo', 'eval.sglang', 'command']);
  for (const k of allKinds()) {
    assert.equal(getKind(k.name), k);
    assert.ok(k.description.length > 10 && !k.description.includes('\n'), k.name);
    assert.ok(['cpu', 'gpu'].includes(k.queue), k.name);
    const trained = ['train.sft', 'rl.grpo', 'rl.ppo'].includes(k.name);
    // Strip the refusal functions (checked by test/dsl/runner-params.test.ts) to compare the declarations.
    const declared = Object.fromEntries(Object.entries(k.runners).map(([n, r]) => [n, { ...r, refuses: undefined }]));
    const builtin = { type: 'builtin', module: `jobs/${k.name}.ts`, refuses: undefined };
    const trl = { type: 'builtin', module: 'jobs/trl.ts', description: k.runners.trl?.description, refuses: undefined };
    assert.deepEqual(declared, k.name === 'command'
      ? { command: { type: 'command', description: 'the program named in with.run, run under the job supervisor', refuses: undefined } }
      : trained ? { builtin, trl } : { builtin });
    if (trained) assert.match(k.runners.trl.description ?? '', /TRL/);
    assert.ok(existsSync(join(ROOT, `jobs/${k.name}.ts`)) || k.name === 'command', `${k.name}: its job module exists`);
    assert.equal(k.params.safeParse({ __unknown__: 1 }).success, false, `${k.name} rejects unknown keys`);
  }
  assert.equal(getKind('nope'), undefined);
  assert.deepEqual(Object.keys(getKind('data.knowledge_base')!.outputs), ['mcq', 'verifiable', 'sft', 'eval']);
  assert.deepEqual(Object.keys(getKind('data.construct_verifiable')!.outputs), ['verifiable', 'report']);
  assert.deepEqual(Object.keys(getKind('data.search_reasoning')!.outputs), ['sft', 'traces']);
  assert.deepEqual(Object.keys(getKind('train.sft')!.outputs), ['checkpoint']);
  assert.deepEqual(Object.keys(getKind('rl.grpo')!.outputs), ['checkpoint', 'metrics']);
  assert.deepEqual(Object.keys(getKind('rl.ppo')!.outputs), ['checkpoint', 'metrics']);
  assert.deepEqual(Object.keys(getKind('eval.sglang')!.outputs), ['report', 'accuracy', 'results']);
  assert.deepEqual(getKind('command')!.declaredOutputs!({ outputs: { a: 'x', b: 'y' } }), ['a', 'b']);
});

test("the recipe's values are the defaults", () => {
  const sft = getKind('train.sft')!.params.parse({ model: 'm', data: 'd' });
  assert.equal(sft.learning_rate, 5e-6);
  assert.equal(sft.max_seq_len, 4096);
  assert.equal(sft.warmup_ratio, 0.05);
  const ppo = getKind('rl.ppo')!.params.parse({ policy: 'p', data: 'd', verifier: { type: 'rule' } });
  assert.deepEqual([ppo.kl_coef, ppo.gamma, ppo.lam, ppo.clip_range, ppo.temperature, ppo.response_length, ppo.num_ppo_epochs], [0.03, 1, 0.95, 0.2, 0.5, 1300, 3]);
  const grpo = getKind('rl.grpo')!.params.parse({ policy: 'p', data: 'd', verifier: { type: 'rule' } });
  assert.equal(grpo.num_generations, 4);
  assert.deepEqual(grpo.reward, { correct: 1, wrong: 0.1, malformed: 0 });
  const search = getKind('data.search_reasoning')!.params.parse({ input: 'i', teacher: { model: 'gpt-4o' }, verifier: { type: 'llm', model: 'gpt-4o' } });
  assert.equal(search.max_depth, 3);
  assert.equal(search.max_attempts, 3);
  assert.deepEqual(search.strategies, ['backtracking', 'exploring_new_paths', 'verification', 'correction']);
  const ev = getKind('eval.sglang')!.params.parse({ model: 'm', data: 'd' });
  assert.deepEqual([ev.temperature, ev.top_p], [0.5, 0.9]);
});

test('fillDefaults fills around values a schema cannot check yet', () => {
  const params = getKind('rl.grpo')!.params;
  const filled = fillDefaults(params, { policy: 'p', data: 'd', verifier: { type: 'llm', model: 'j' }, iterations: '${{ x }}' }) as Record<string, any>;
  assert.equal(filled.iterations, '${{ x }}');
  assert.equal(filled.num_generations, 4);
  assert.equal(filled.verifier.base_url, 'https://api.openai.com/v1', 'nested defaults from the matching union branch');
});
