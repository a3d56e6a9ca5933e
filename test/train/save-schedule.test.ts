/**
 * When trainers checkpoint: by step count or by wall-clock time, whichever comes first
 * (train/checkpoint.ts SaveSchedule), with an injected clock; and the defaults of the
 * training kinds and the shipped pipelines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrpoParams } from '../../dsl/kinds/grpo.ts';
import { PpoParams } from '../../dsl/kinds/ppo.ts';
import { SftParams } from '../../dsl/kinds/sft.ts';
import { SaveSchedule } from '../../train/checkpoint.ts';
import { compileFile } from '../../dsl/compile.ts';
import { PROJECT_ROOT } from '../../runtime/supervisor.ts';
import { join } from 'node:path';

test('a checkpoint is due every N steps, or once the minutes have passed since the last save', () => {
  let now = 0;
  const s = new SaveSchedule(10, 30, () => now);
  now = 29 * 60_000;
  assert.equal(s.due(3), false, 'neither 10 steps nor 30 minutes');
  assert.equal(s.due(10), true, 'the 10th step');
  now = 30 * 60_000;
  assert.equal(s.due(4), true, '30 minutes since the start');
  s.saved();
  now += 29 * 60_000;
  assert.equal(s.due(5), false, 'the clock restarted at the save');
  now += 60_000;
  assert.equal(s.due(6), true);
});

test('save_every_minutes 0: by count only', () => {
  let now = 0;
  const s = new SaveSchedule(5, 0, () => now);
  now = 1e12;
  assert.equal(s.due(4), false);
  assert.equal(s.due(5), true);
});

test('defaults: at most 30 minutes lost on a real run, at most one iteration in the demo', () => {
  for (const schema of [GrpoParams, PpoParams, SftParams]) {
    const shape = schema.shape as Record<string, { parse(v: unknown): unknown }>;
    assert.equal(shape.save_every_minutes.parse(undefined), 30);
    assert.throws(() => shape.save_every_minutes.parse(-1));
  }
  const demo = compileFile(join(PROJECT_ROOT, 'pipelines', 'huatuo-tiny.yaml'), { cwd: PROJECT_ROOT });
  const grpo = demo.steps.find((s) => s.uses === 'rl.grpo')!;
  assert.equal(grpo.with.save_every, 1, 'the demo checkpoints every RL iteration');
  const real = compileFile(join(PROJECT_ROOT, 'pipelines', 'huatuo.yaml'), { cwd: PROJECT_ROOT });
  for (const s of real.steps.filter((x) => x.uses.startsWith('rl.') || x.uses === 'train.sft')) {
    assert.ok((s.with.save_every_minutes as number) <= 30, `${s.id}: ${s.with.save_every_minutes}`);
  }
});
