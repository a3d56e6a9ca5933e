/**
 * Where a step of a resumed run continues from (runtime/step-identity.ts): the newest valid
 * checkpoint of the same step in the old run's folder; from zero, with the reason, when the
 * step changed, finished, or left nothing valid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PlanStep } from '../../dsl/plan.ts';
import { resumePointFrom, stepIdentity, writeIdentity } from '../../runtime/step-identity.ts';

const step = (over: Partial<PlanStep> = {}): PlanStep => ({
  id: 'ppo', uses: 'rl.ppo', needs: [], with: {}, retry: { maximumAttempts: 1, initialIntervalMs: 1, backoffCoefficient: 1, maximumIntervalMs: 1 },
  timeouts: { stepMs: 1, attemptMs: 1, heartbeatMs: 1 }, queue: 'gpu', cache: true, outputs: [], hash: 'h1',
  source: { file: 'p.yaml', line: 1, col: 1 }, ...over,
});
const params = { policy: '/m', iterations: 300 };

/** An old run's step folder with checkpoints at the given iterations (and a half-written one). */
function oldStep(iterations: number[], identity = stepIdentity('old', step(), params)): string {
  const dir = mkdtempSync(join(tmpdir(), 'old-step-'));
  for (const i of iterations) {
    const c = join(dir, 'checkpoints', `step-${String(i).padStart(6, '0')}`);
    mkdirSync(c, { recursive: true });
    writeFileSync(join(c, 'trainer_state.json'), '{}');
  }
  mkdirSync(join(dir, 'checkpoints', '.step-000260.partial-1'), { recursive: true });
  writeIdentity(dir, identity);
  return dir;
}

test('the same step continues from the newest valid checkpoint of the old run', () => {
  const dir = oldStep([240, 250]);
  const p = resumePointFrom('old', dir, stepIdentity('new', step(), params), params);
  assert.equal(p.checkpoint, join(dir, 'checkpoints', 'step-000250'));
  assert.match(p.note, /continuing step "ppo" of run old from its newest valid checkpoint .*step-000250/);
});

test('a changed step starts from zero and says why', () => {
  const dir = oldStep([250]);
  const changed = resumePointFrom('old', dir, stepIdentity('new', step(), { ...params, iterations: 400 }), { ...params, iterations: 400 });
  assert.equal(changed.checkpoint, undefined);
  assert.match(changed.note, /not the same step \(its resolved parameters changed\): starting from zero/);
  const redefined = resumePointFrom('old', dir, stepIdentity('new', step({ hash: 'h2' }), params), params);
  assert.match(redefined.note, /its definition in the pipeline changed/);
  const inputs = resumePointFrom('old', oldStep([250], stepIdentity('old', step(), params, 'a'.repeat(64))), stepIdentity('new', step(), params, 'b'.repeat(64)), params);
  assert.match(inputs.note, /its input files changed/);
});

test('a finished step, no checkpoint, no record: from zero', () => {
  const done = resumePointFrom('old', oldStep([250], { ...stepIdentity('old', step(), params), done: true }), stepIdentity('new', step(), params), params);
  assert.equal(done.checkpoint, undefined);
  assert.match(done.note, /had finished/);
  const none = resumePointFrom('old', oldStep([]), stepIdentity('new', step(), params), params);
  assert.match(none.note, /left no valid checkpoint/);
  assert.match(resumePointFrom('old', join(tmpdir(), 'no-such-step-dir'), stepIdentity('new', step(), params), params).note, /never started/);
});

test('a step that resumed from an older run and wrote nothing of its own hands that checkpoint on', () => {
  const older = oldStep([250]);
  const mid = oldStep([], { ...stepIdentity('mid', step(), params), resumedFrom: join(older, 'checkpoints', 'step-000250') });
  assert.equal(resumePointFrom('mid', mid, stepIdentity('new', step(), params), params).checkpoint, join(older, 'checkpoints', 'step-000250'));
});

test('changed code does not stop a step continuing (the log says so); changed inputs do', () => {
  const code = (sources: string) => ({ package: '0.1.0', sources, files: {} });
  const old = stepIdentity('old', step(), params, 'a'.repeat(64), { runner: 'builtin', inputHashes: { '/m': 'h1' }, code: code('s1') });
  const dir = oldStep([250], old);
  const fixed = resumePointFrom('old', dir, stepIdentity('new', step(), params, 'b'.repeat(64), { runner: 'builtin', inputHashes: { '/m': 'h1' }, code: code('s2') }), params);
  assert.equal(fixed.checkpoint, join(dir, 'checkpoints', 'step-000250'));
  assert.match(fixed.note, /from its newest valid checkpoint .*step-000250 \(the code of rl\.ppo changed since\)$/);
  const inputs = resumePointFrom('old', dir, stepIdentity('new', step(), params, 'c'.repeat(64), { runner: 'builtin', inputHashes: { '/m': 'h2' }, code: code('s1') }), params);
  assert.equal(inputs.checkpoint, undefined);
  assert.match(inputs.note, /its input files changed/);
  const runner = resumePointFrom('old', dir, stepIdentity('new', step(), params, 'a'.repeat(64), { runner: 'python', inputHashes: { '/m': 'h1' }, code: code('s1') }), params);
  assert.match(runner.note, /its runner changed from builtin to python/);
});
