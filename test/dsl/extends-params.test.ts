/** `extends` (merging by id, remove, chains, error locations) and param overrides (--set, --params). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, compileFiles, compileText } from './helpers.ts';

const PARENT = `name: parent
description: the parent
params:
  lr: { type: number, default: 0.01 }
  size: { type: integer, default: 100 }
defaults:
  queue: cpu
  timeout: 1h
steps:
  - id: kb
    uses: data.knowledge_base
    with: { train_size: "\${{ params.size }}", cot_style: brief }
  - id: sft
    uses: train.sft
    needs: kb
    with:
      model: preset:tiny
      data: \${{ steps.kb.outputs.sft }}
      learning_rate: \${{ params.lr }}
      epochs: 2
`;

test('a child inherits, overrides by key, merges with key by key, appends and removes steps', () => {
  const child = `extends: parent.yaml
name: child
params:
  lr: { type: number, default: 0.5 }
defaults:
  timeout: 2h
steps:
  - id: sft
    queue: gpu
    with: { epochs: 5 }
  - id: eval
    uses: eval.sglang
    needs: [sft, kb]
    with: { model: "\${{ steps.sft.outputs.checkpoint }}", data: "\${{ steps.kb.outputs.eval }}" }
`;
  const r = compileFiles({ 'child.yaml': child, 'parent.yaml': PARENT });
  assert.ok(r.plan, r.formatted);
  const p = r.plan;
  assert.equal(p.name, 'child');
  assert.equal(p.description, 'the parent', 'inherited');
  assert.deepEqual(p.sources, ['child.yaml', 'parent.yaml']);
  assert.deepEqual(p.params, { lr: 0.5, size: 100 });
  assert.deepEqual(p.steps.map((s) => s.id), ['kb', 'sft', 'eval']);
  const [kb, sft, ev] = p.steps;
  assert.equal(kb.queue, 'cpu', 'inherited defaults.queue');
  assert.equal(kb.timeouts.stepMs, 7_200_000, "the child's defaults.timeout");
  assert.equal(kb.with.train_size, 100);
  assert.equal(sft.queue, 'gpu');
  assert.equal(sft.with.epochs, 5, "the child's with key");
  assert.equal(sft.with.model, 'preset:tiny', "the parent's other with keys");
  assert.equal(sft.with.learning_rate, 0.5, "the child's param default reaches the parent's step");
  assert.deepEqual(sft.needs, ['kb']);
  assert.deepEqual(sft.source, { file: 'child.yaml', line: 8, col: 5 }, 'an overridden step points at the override');
  assert.deepEqual(kb.source, { file: 'parent.yaml', line: 10, col: 5 });
  assert.equal(ev.source.file, 'child.yaml');

  const removed = compileFiles({ 'c.yaml': 'extends: parent.yaml\nsteps:\n  - { id: sft, remove: true }\n', 'parent.yaml': PARENT });
  assert.ok(removed.plan, removed.formatted);
  assert.equal(removed.plan.name, 'parent');
  assert.deepEqual(removed.plan.steps.map((s) => s.id), ['kb']);
});

test('errors point into the file that holds the offending text, through a chain of three files', () => {
  const files = {
    'a/child.yaml': 'extends: ../b/middle.yaml\nname: c\nsteps:\n  - id: sft\n    with: { epochs: many }\n',
    'b/middle.yaml': 'extends: ../parent.yaml\nsteps:\n  - id: sft\n    with: { max_seq_len: -4 }\n',
    'parent.yaml': PARENT.replace('learning_rate: ${{ params.lr }}', 'learning_rate: ${{ params.lrr }}'),
  };
  const r = compileFiles(files);
  assert.equal(r.plan, undefined);
  assert.deepEqual(
    r.errors.map((d) => `${d.file}:${d.line}:${d.col}`),
    ['parent.yaml:19:22'],
    'reference errors are reported before types are checked',
  );
  files['parent.yaml'] = PARENT;
  const r2 = compileFiles(files);
  assert.deepEqual(r2.errors.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`), [
    'a/child.yaml:5:21: with.epochs: expected a number, got string "many"',
    'b/middle.yaml:4:26: with.max_seq_len: must be > 0; got number -4',
  ]);
});

test('a child may reference what only the parent declares, and the parent what the child adds', () => {
  const child = `extends: parent.yaml
params:
  teacher: { type: string, default: gpt-4o }
steps:
  - id: kb
    with: { specialties: ["\${{ params.teacher }}"] }
`;
  const r = compileFiles({ 'child.yaml': child, 'parent.yaml': PARENT });
  assert.ok(r.plan, r.formatted);
  assert.deepEqual(r.plan.steps[0].with.specialties, ['gpt-4o']);
  assert.equal(r.plan.steps[0].with.cot_style, 'brief');
});

test('--set and --params override defaults in that order, with values read by param type', () => {
  const yaml = `name: p
params:
  lr: { type: number, default: 0.01 }
  n: { type: integer, default: 1 }
  flag: { type: boolean, default: false }
  label: { type: string, default: x }
  out: { type: path, default: out }
  rl: { type: enum, values: [ppo, grpo], default: ppo }
  width: { type: enum, values: [1, 2, 4], default: 1 }
steps:
  - { id: a, uses: command, with: { run: [echo, "\${{ params.label }}"] } }
`;
  const files = { 'p.yaml': yaml, 'values.yaml': 'lr: 0.5\nn: 7\nlabel: from-file\n' };
  const r = compileFiles(files, { paramsFile: 'values.yaml', set: ['n=9', 'flag=true', 'label=123', 'out=a b/c', 'rl=grpo', 'width=4'] });
  assert.ok(r.plan, r.formatted);
  assert.deepEqual(r.plan.params, { flag: true, label: '123', lr: 0.5, n: 9, out: 'a b/c', rl: 'grpo', width: 4 });
  assert.deepEqual(r.plan.steps[0].with.run, ['echo', '123'], 'strings stay strings');
  assert.deepEqual(Object.keys(r.plan.params), Object.keys(r.plan.params).sort());
});

test('--params file errors carry the file, line and column', () => {
  const files = { 'p.yaml': BASE, 'values.yaml': 'lr: 0.5\nnmae: x\nname: 3\n' };
  const r = compileFiles(files, { paramsFile: 'values.yaml' });
  assert.deepEqual(r.errors.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}`), [
    "values.yaml:2:1: unknown param 'nmae' (did you mean 'name'?); the pipeline declares: lr, name",
    "values.yaml:3:7: param 'name': expected a string, got number 3",
  ]);
  const missing = compileFiles({ 'p.yaml': BASE }, { paramsFile: 'nope.yaml' });
  assert.match(missing.formatted!, /^nope\.yaml: params file not found/);
  const notMap = compileFiles({ 'p.yaml': BASE, 'v.yaml': '- 1\n' }, { paramsFile: 'v.yaml' });
  assert.match(notMap.formatted!, /^v\.yaml:1:1: a params file is a YAML mapping/);
});

test('a required param is satisfied by --set; enum values are checked', () => {
  const yaml = BASE.replace('params:', 'params:\n  ckpt: { type: path }').replace('model: preset:tiny', 'model: ${{ params.ckpt }}');
  assert.match(compileText(yaml).formatted!, /param 'ckpt' is required: pass --set ckpt=PATH/);
  const ok = compileText(yaml, { set: ['ckpt=runs/x/model'] });
  assert.equal(ok.plan?.steps[1].with.model, 'runs/x/model');
  const bad = compileText(BASE.replace('params:', 'params:\n  rl: { type: enum, values: [ppo, grpo], default: ppo }'), { set: ['rl=gpro'] });
  assert.match(bad.formatted!, /--set: param 'rl': expected one of "ppo", "grpo", got string "gpro" \(did you mean 'grpo'\?\)/);
  const empty = compileText(BASE, { set: ['lr='] });
  assert.match(empty.formatted!, /--set: param 'lr': expected a number, got null \(an empty value\)/);
});

test('a missing pipeline file is one short error', () => {
  const r = compileFiles({ 'other.yaml': 'name: x\n' }, {}, 'missing.yaml');
  assert.equal(r.formatted, 'missing.yaml: file not found\n\n1 error');
});
