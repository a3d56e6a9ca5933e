import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ArtifactStore, defaultStoreRoot } from '../../runtime/store.ts';
import { tempDir } from '../fixtures/jobs/util.ts';

test('one folder per run and per step, with the log, metrics and checkpoints inside the step folder', () => {
  const root = tempDir('da-store-');
  const s = new ArtifactStore(root);
  assert.equal(s.root, root);
  assert.equal(s.runDir('run-1'), join(root, 'runs', 'run-1'));
  const step = s.stepDir('run-1', 'sft');
  assert.equal(step, join(root, 'runs', 'run-1', 'steps', 'sft'));
  assert.ok(statSync(step).isDirectory());
  assert.equal(s.stepLog('run-1', 'sft'), join(step, 'step.log'));
  assert.equal(s.metricsFile('run-1', 'sft'), join(step, 'metrics.jsonl'));
  assert.equal(s.checkpointsDir('run-1', 'sft'), join(step, 'checkpoints'));
  assert.ok(statSync(join(step, 'checkpoints')).isDirectory());
  assert.equal(s.temporalDbPath(), join(root, 'temporal', 'temporal.db'));
  assert.equal(s.serverDir(), join(root, 'server'));
  assert.equal(s.cacheDir(), join(root, 'cache'));
  assert.notEqual(s.stepDir('run-2', 'sft'), step);
  // stepPath names the same folder but only reads: it creates nothing.
  assert.equal(s.stepPath('run-1', 'sft'), step);
  assert.equal(s.stepPath('run-3', 'sft'), join(root, 'runs', 'run-3', 'steps', 'sft'));
  assert.equal(existsSync(join(root, 'runs', 'run-3')), false);
  assert.throws(() => s.stepPath('run-1', '..'), /invalid step id/);
});

test('run manifests round-trip, and ids cannot escape the store', () => {
  const s = new ArtifactStore(tempDir('da-store-'));
  const plan = { format: 1, name: 'p', steps: [{ id: 'a' }], hash: 'h' };
  s.writeRunManifest('r1', plan);
  assert.deepEqual(s.readRunManifest('r1'), plan);
  assert.throws(() => s.readRunManifest('r2'), /plan\.json: file not found/);
  writeFileSync(join(s.runDir('r1'), 'plan.json'), '{"format": 1,\n oops}');
  assert.throws(() => s.readRunManifest('r1'), /plan\.json:2:2: invalid JSON/);
  for (const bad of ['..', '.', 'a/b', '', 'x\\y']) {
    assert.throws(() => s.stepDir('r1', bad), /invalid step id/);
    assert.throws(() => s.runDir(bad), /invalid run id/);
  }
  assert.equal(existsSync(join(s.root, 'b')), false);
});

test('the default root is DOCTOR_AGENT_HOME, else .doctor-agent in the current folder', () => {
  const saved = process.env.DOCTOR_AGENT_HOME;
  try {
    process.env.DOCTOR_AGENT_HOME = '/tmp/da-home';
    assert.equal(defaultStoreRoot(), '/tmp/da-home');
    delete process.env.DOCTOR_AGENT_HOME;
    assert.equal(defaultStoreRoot(), resolve('.doctor-agent'));
    assert.equal(new ArtifactStore().root, resolve('.doctor-agent'));
  } finally {
    if (saved === undefined) delete process.env.DOCTOR_AGENT_HOME;
    else process.env.DOCTOR_AGENT_HOME = saved;
  }
});
