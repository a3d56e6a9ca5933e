import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Each case runs in its own process: the backend is process-wide state.
const root = join(import.meta.dirname, '..', '..');
/** A folder with no native build in it, so the JS backends are what is left. */
const noNative = mkdtempSync(join(tmpdir(), 'da-no-native-'));
test.after(() => rmSync(noNative, { recursive: true, force: true }));

function pick(env: Record<string, string>, prefer = ''): { out: string; err: string } {
  const code = `import { initBackend } from './engine/backend.ts';
    const name = await initBackend(${prefer ? JSON.stringify(prefer) : ''});
    await initBackend(${prefer ? JSON.stringify(prefer) : ''});
    console.log(name);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root, env: { ...process.env, DOCTOR_AGENT_NATIVE_DIR: noNative, ...env }, encoding: 'utf8',
  });
  return { out: r.stdout.trim(), err: r.stderr };
}

test('without a native backend the best one present is wasm, logged once', () => {
  const r = pick({ DOCTOR_AGENT_BACKEND: '' });
  assert.equal(r.out, 'wasm');
  assert.equal(r.err.match(/engine: TensorFlow\.js backend wasm/g)?.length, 1);
});

test('DOCTOR_AGENT_BACKEND forces a backend; asking for an absent one fails clearly', () => {
  assert.equal(pick({ DOCTOR_AGENT_BACKEND: 'cpu' }).out, 'cpu');
  assert.equal(pick({ DOCTOR_AGENT_BACKEND: '' }, 'cpu').out, 'cpu');
  assert.match(pick({ DOCTOR_AGENT_BACKEND: 'tensorflow' }).err,
    /backend "tensorflow" is not available \(forced by DOCTOR_AGENT_BACKEND\): build it with `node scripts\/install-native\.mjs`/);
  assert.match(pick({ DOCTOR_AGENT_BACKEND: 'gpu' }).err, /DOCTOR_AGENT_BACKEND=gpu is not a backend: use one of tensorflow, wasm, cpu/);
});

test('a native build that does not load is reported, and the engine goes on with wasm', () => {
  const dir = mkdtempSync(join(tmpdir(), 'da-broken-native-'));
  try {
    writeFileSync(join(dir, 'built.json'), JSON.stringify({ tensorflow: '2.18.0', tfjsNode: '4.22.0' }));
    const r = pick({ DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: dir });
    assert.equal(r.out, 'wasm');
    assert.match(r.err, /engine: TensorFlow\.js backend wasm \(@tensorflow\/tfjs-backend-wasm\); the native backend in .* did not load \(.+\); rebuild it with `node scripts\/install-native\.mjs`/);
    const forced = pick({ DOCTOR_AGENT_BACKEND: 'tensorflow', DOCTOR_AGENT_NATIVE_DIR: dir });
    assert.match(forced.err, /backend "tensorflow" is not available \(forced by DOCTOR_AGENT_BACKEND\): the native backend in .* did not load/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const built = join(root, '.tools', 'tfjs-node');
test('the native backend built by npm install is chosen first and named in the log', { skip: !existsSync(join(built, 'built.json')) && 'no native build in .tools/tfjs-node' }, () => {
  const r = pick({ DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built });
  assert.equal(r.out, 'tensorflow', r.err);
  assert.equal(r.err.match(/engine: TensorFlow\.js backend tensorflow \(@tensorflow\/tfjs-node [\d.]+, TensorFlow [\d.]+, built in \.tools\/tfjs-node\)/g)?.length, 1, r.err);
  // TensorFlow's informational start-up lines are kept off the job's stderr.
  assert.doesNotMatch(r.err, /cpu_feature_guard/);
});

/** Runs initBackendFor(workload) in a fresh process, then a plain initBackend() (as a library the process loads later would). */
function pickFor(workload: string, env: Record<string, string>, parameters?: number): { out: string; err: string } {
  const code = `import { initBackend, initBackendFor } from './engine/backend.ts';
    const name = await initBackendFor(${JSON.stringify(workload)}${parameters === undefined ? '' : `, ${parameters}`});
    const later = await initBackend();
    console.log(name + ' ' + later);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root, env: { ...process.env, DOCTOR_AGENT_NATIVE_DIR: noNative, ...env }, encoding: 'utf8',
  });
  return { out: r.stdout.trim(), err: r.stderr };
}

test('a workload picks its backend, says so in the log, and a later plain initBackend keeps it', { skip: !existsSync(join(built, 'built.json')) && 'no native build in .tools/tfjs-node' }, () => {
  const gen = pickFor('generation', { DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built });
  assert.equal(gen.out, 'wasm wasm', gen.err);
  assert.equal(gen.err.match(/engine: TensorFlow\.js backend wasm \(@tensorflow\/tfjs-backend-wasm\) for generation\n/g)?.length, 1, gen.err);
  assert.doesNotMatch(gen.err, /backend tensorflow/);
  const train = pickFor('training', { DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built });
  assert.equal(train.out, 'tensorflow tensorflow', train.err);
  assert.match(train.err, /engine: TensorFlow\.js backend tensorflow \(@tensorflow\/tfjs-node [^)]*\) for training\n/);
  const tiny = pickFor('generation', { DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built }, 530_000);
  assert.equal(tiny.out, 'wasm wasm', tiny.err);
  assert.match(tiny.err, /backend wasm \(@tensorflow\/tfjs-backend-wasm\) for generation \(0\.5M parameters\)\n/);
  // The small preset (10M) still decodes faster on wasm; a model above WASM_GENERATION_MAX_PARAMS on TensorFlow.
  const small = pickFor('generation', { DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built }, 10_000_000);
  assert.equal(small.out, 'wasm wasm', small.err);
  const larger = pickFor('generation', { DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built }, 50_000_000);
  assert.equal(larger.out, 'tensorflow tensorflow', larger.err);
  assert.match(larger.err, /backend tensorflow \(.*\) for generation \(50\.0M parameters\)\n/);
  const rl = pickFor('rl', { DOCTOR_AGENT_BACKEND: '', DOCTOR_AGENT_NATIVE_DIR: built });
  assert.equal(rl.out, 'tensorflow tensorflow', rl.err);
  const forced = pickFor('generation', { DOCTOR_AGENT_BACKEND: 'tensorflow', DOCTOR_AGENT_NATIVE_DIR: built });
  assert.equal(forced.out, 'tensorflow tensorflow', forced.err);
  assert.match(forced.err, /backend tensorflow \(.*\) for generation, forced by DOCTOR_AGENT_BACKEND\n/);
});

test('without a native backend every workload gets wasm', () => {
  for (const workload of ['generation', 'training', 'rl']) {
    const r = pickFor(workload, { DOCTOR_AGENT_BACKEND: '' });
    assert.equal(r.out, 'wasm wasm', r.err);
    assert.match(r.err, new RegExp(`engine: TensorFlow\\.js backend wasm \\(@tensorflow/tfjs-backend-wasm\\) for ${workload}\\n`));
  }
});

test('backend selections made at once run one after another: the engine never runs one backend\'s kernels on another\'s instance', { skip: !existsSync(join(built, 'built.json')) && 'no native build in .tools/tfjs-node' }, () => {
  // wasm initialises asynchronously; tensorflow is asked for while it does. Without the selections
  // taking turns, tfjs names tensorflow but installs the wasm instance when its initialisation ends.
  const code = `import * as tf from './engine/tf.ts';
    import { initBackend } from './engine/backend.ts';
    const names = await Promise.all([initBackend('wasm'), initBackend('tensorflow')]);
    const instance = tf.engine().backendInstance;
    const y = tf.reshape(tf.tensor1d([1, 2, 3, 4]), [2, 2]).arraySync();
    console.log(JSON.stringify({ names, now: tf.getBackend(), native: 'binding' in instance, y }));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, env: { ...process.env, DOCTOR_AGENT_BACKEND: '' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), { names: ['wasm', 'tensorflow'], now: 'tensorflow', native: true, y: [[1, 2], [3, 4]] });
});
