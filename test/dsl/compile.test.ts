/** The compiled Plan of valid pipelines: order, substitution, defaults, hashes, conditions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashJson } from '../../common/hash.ts';
import { BASE, compileText } from './helpers.ts';

function plan(yaml: string, set?: string[]) {
  const r = compileText(yaml, { set });
  assert.ok(r.plan, r.formatted);
  return r.plan;
}

test('a small pipeline compiles: params substituted with their type, kind defaults filled, settings from the kind', () => {
  const p = plan(BASE);
  assert.equal(p.format, 1);
  assert.equal(p.name, 't');
  assert.deepEqual(p.sources, ['pipeline.yaml']);
  assert.deepEqual(p.params, { lr: 0.01, name: 'abc' });
  assert.deepEqual(p.steps.map((s) => s.id), ['kb', 'sft']);
  const sft = p.steps[1];
  assert.equal(sft.uses, 'train.sft');
  assert.deepEqual(sft.needs, ['kb']);
  assert.equal(sft.with.learning_rate, 0.01);
  assert.equal(sft.with.data, '${{ steps.kb.outputs.sft }}');
  assert.equal(sft.with.max_seq_len, 4096, 'kind default');
  assert.equal(sft.with.warmup_ratio, 0.05, 'kind default');
  assert.deepEqual(Object.keys(sft.with), [...Object.keys(sft.with)].sort(), 'with keys sorted');
  assert.equal(sft.queue, 'gpu', "the kind's queue");
  assert.equal(p.steps[0].queue, 'cpu');
  assert.deepEqual(sft.outputs, ['checkpoint']);
  assert.deepEqual(sft.retry, { maximumAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: 60_000 });
  assert.deepEqual(sft.timeouts, { stepMs: 86_400_000, attemptMs: 86_400_000, heartbeatMs: 300_000, graceMs: 300_000 });
  assert.equal(sft.cache, true);
  assert.equal(sft.if, undefined);
  assert.deepEqual(sft.source, { file: 'pipeline.yaml', line: 8, col: 5 });
});

test('hashes: per step and for the plan, over the canonical JSON, stable across compiles', () => {
  const a = plan(BASE);
  const b = plan(BASE);
  assert.equal(a.hash, b.hash);
  const { hash, ...body } = a;
  assert.equal(hash, hashJson(body));
  for (const s of a.steps) {
    const { hash: h, source: _where, ...rest } = s;
    assert.equal(h, hashJson(rest));
  }
  const moved = plan(BASE.replace('steps:', '# a comment that moves every step down a line\nsteps:'));
  assert.deepEqual(moved.steps.map((s) => s.source.line), a.steps.map((s) => s.source.line + 1));
  assert.deepEqual(moved.steps.map((s) => s.hash), a.steps.map((s) => s.hash), 'moving a step keeps its hash');
  const c = plan(BASE, ['lr=0.02']);
  assert.notEqual(c.hash, a.hash);
  assert.equal(c.steps[0].hash, a.steps[0].hash, 'kb does not read lr');
  assert.notEqual(c.steps[1].hash, a.steps[1].hash);
});

test('defaults and step settings: durations in ms, retry merged key by key, queue and cache', () => {
  const yaml = BASE.replace('steps:', `defaults:
  queue: fast
  timeout: 1h30m
  heartbeat: 45s
  cache: false
  retry: { max_attempts: 5, initial_interval: 500ms }
steps:`).replace('    needs: kb', `    needs: kb
    queue: gpu-big
    attempt_timeout: 20m
    retry: { backoff: 1.5, max_interval: 2m }
    cache: true`);
  const p = plan(yaml);
  const [kb, sft] = p.steps;
  assert.equal(kb.queue, 'fast');
  assert.equal(kb.cache, false);
  assert.deepEqual(kb.timeouts, { stepMs: 5_400_000, attemptMs: 5_400_000, heartbeatMs: 45_000, graceMs: 10_000 });
  assert.deepEqual(kb.retry, { maximumAttempts: 5, initialIntervalMs: 500, backoffCoefficient: 2, maximumIntervalMs: 60_000 });
  assert.equal(sft.queue, 'gpu-big');
  assert.equal(sft.cache, true);
  assert.deepEqual(sft.timeouts, { stepMs: 5_400_000, attemptMs: 1_200_000, heartbeatMs: 45_000, graceMs: 300_000 });
  assert.deepEqual(sft.retry, { maximumAttempts: 5, initialIntervalMs: 500, backoffCoefficient: 1.5, maximumIntervalMs: 120_000 });
});

test('durations may come from params', () => {
  const yaml = BASE.replace('params:', 'params:\n  patience: { type: string, default: 3m }').replace('    needs: kb', '    needs: kb\n    heartbeat: ${{ params.patience }}\n    retry: { initial_interval: "${{ params.patience }}" }');
  const sft = plan(yaml, ['patience=90s']).steps[1];
  assert.equal(sft.timeouts.heartbeatMs, 90_000);
  assert.equal(sft.retry.initialIntervalMs, 90_000);
});

test('steps come in topological order, ties in declaration order, whatever order they are written in', () => {
  const yaml = `name: order
steps:
  - { id: d, uses: command, needs: [c, b], with: { run: [echo, d] } }
  - { id: c, uses: command, needs: a, with: { run: [echo, c] } }
  - { id: b, uses: command, needs: a, with: { run: [echo, b] } }
  - { id: a, uses: command, with: { run: [echo, a] } }
  - { id: z, uses: command, with: { run: [echo, z] } }
`;
  const p = plan(yaml);
  assert.deepEqual(p.steps.map((s) => s.id), ['a', 'c', 'b', 'd', 'z']);
  assert.deepEqual(p.steps[3].needs, ['b', 'c'], 'needs sorted');
});

test('conditions: constant after params → omitted or "false"; otherwise kept with params substituted', () => {
  const yaml = `name: cond
params:
  rl: { type: enum, values: [ppo, grpo], default: ppo }
steps:
  - { id: a, uses: command, with: { run: [echo], outputs: { out: a.txt } } }
  - { id: ppo, uses: command, if: "\${{ params.rl == 'ppo' }}", with: { run: [echo] } }
  - { id: grpo, uses: command, if: "params.rl == 'grpo'", with: { run: [echo] } }
  - { id: late, uses: command, needs: a, if: "\${{ steps.a.outputs.out != '' && params.rl == 'ppo' }}", with: { run: [echo] } }
  - { id: never, uses: command, if: false, with: { run: [echo] } }
  - { id: always, uses: command, if: true, with: { run: [echo] } }
`;
  const byId = (set?: string[]) => new Map(plan(yaml, set).steps.map((s) => [s.id, s]));
  const ppo = byId();
  assert.equal(ppo.get('ppo')!.if, undefined);
  assert.equal(ppo.get('grpo')!.if, 'false');
  assert.equal(ppo.get('late')!.if, "steps.a.outputs.out != ''");
  assert.equal(ppo.get('never')!.if, 'false');
  assert.equal(ppo.get('always')!.if, undefined);
  const grpo = byId(['rl=grpo']);
  assert.equal(grpo.get('ppo')!.if, 'false');
  assert.equal(grpo.get('grpo')!.if, undefined);
  assert.equal(grpo.get('late')!.if, 'false');
});

test('command steps: outputs are the names in with.outputs; argv, env and defaults kept', () => {
  const yaml = `name: cmd
steps:
  - id: train
    uses: command
    with:
      run: [accelerate, launch, train.py, --lr, "1e-5"]
      env: { WANDB_MODE: offline }
      outputs: { model: out/model, log: out/log.txt }
      checkpoints: out/checkpoint-*
      resume_args: [--resume_from_checkpoint, "{checkpoint}"]
      progress_regex: 'step (?<current>\\d+)/(?<total>\\d+)'
  - id: after
    uses: command
    needs: train
    with:
      run: [ls, "\${{ steps.train.outputs.model }}"]
      shell: false
  - id: sh
    uses: command
    with: { run: "echo hi | wc -c", shell: true }
`;
  const p = plan(yaml);
  const train = p.steps[0];
  assert.deepEqual(train.outputs, ['model', 'log']);
  assert.deepEqual(train.with.run, ['accelerate', 'launch', 'train.py', '--lr', '1e-5']);
  assert.equal(train.with.shell, false);
  assert.deepEqual(train.with.success_codes, [0]);
  assert.deepEqual(p.steps.find((s) => s.id === 'after')!.outputs, []);
});

test('values that only a run can fill keep defaults around them', () => {
  const yaml = `name: rt
steps:
  - { id: sft, uses: train.sft, with: { model: preset:tiny, data: d.json } }
  - id: g
    uses: rl.grpo
    needs: sft
    with:
      policy: \${{ steps.sft.outputs.checkpoint }}
      data: d.json
      verifier: { type: rule }
      iterations: "\${{ steps.sft.outputs.checkpoint }}"
`;
  const g = plan(yaml).steps[1];
  assert.equal(g.with.iterations, '${{ steps.sft.outputs.checkpoint }}', 'kept for the run to resolve');
  assert.equal(g.with.num_generations, 4, 'defaults still filled');
  assert.deepEqual(g.with.reward, { correct: 1, wrong: 0.1, malformed: 0 });
});

test('YAML anchors, aliases and merge keys work, and errors inside them still find their line', () => {
  const yaml = `name: anchors
x-teacher: &teacher { model: gpt-4o, concurrency: 2 }
steps:
  - id: v
    uses: data.construct_verifiable
    with:
      input: mcq.json
      teacher: *teacher
  - id: w
    uses: data.construct_verifiable
    with:
      input: mcq.json
      teacher:
        <<: *teacher
        concurrency: 4
`;
  const bad = compileText(yaml);
  assert.match(bad.formatted!, /^pipeline\.yaml:2:1: unknown key 'x-teacher'/, 'unknown top-level keys are still rejected');
  const p = plan(yaml.replace('name: anchors\nx-teacher: &teacher { model: gpt-4o, concurrency: 2 }\nsteps:\n  - id: v', 'name: anchors\nsteps:\n  - id: v').replace('teacher: *teacher', 'teacher: &teacher { model: gpt-4o, concurrency: 2 }'));
  assert.equal((p.steps[0].with.teacher as { concurrency: number }).concurrency, 2);
  assert.deepEqual([(p.steps[1].with.teacher as { model: string }).model, (p.steps[1].with.teacher as { concurrency: number }).concurrency], ['gpt-4o', 4]);
  // A bad value in an anchor is reported once, where the anchor is written, also for its aliases.
  const typo = compileText(
    yaml.replace('x-teacher: &teacher { model: gpt-4o, concurrency: 2 }\n', '').replace('teacher: *teacher', 'teacher: &teacher { model: gpt-4o, concurrency: two }') +
      '  - id: z\n    uses: data.construct_verifiable\n    with: { input: mcq.json, teacher: *teacher }\n',
  );
  assert.deepEqual(typo.errors.map((d) => [d.line, d.col, d.message]), [[7, 55, 'with.teacher.concurrency: expected a number, got string "two"']], typo.formatted);
});
