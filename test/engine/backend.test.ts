import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

// Each case runs in its own process: the backend is process-wide state.
const root = join(import.meta.dirname, '..', '..');
function pick(env: Record<string, string>, prefer = ''): { out: string; err: string } {
  const code = `import { initBackend } from './engine/backend.ts';
    const name = await initBackend(${prefer ? JSON.stringify(prefer) : ''});
    await initBackend(${prefer ? JSON.stringify(prefer) : ''});
    console.log(name);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root, env: { ...process.env, ...env }, encoding: 'utf8',
  });
  return { out: r.stdout.trim(), err: r.stderr };
}

test('the best backend present is chosen (wasm here: tfjs-node is not installed) and logged once', () => {
  const env = { DOCTOR_AGENT_BACKEND: '' };
  const r = pick(env);
  assert.equal(r.out, 'wasm');
  assert.equal(r.err.match(/engine: TensorFlow\.js backend wasm/g)?.length, 1);
});

test('DOCTOR_AGENT_BACKEND forces a backend; asking for an absent one fails clearly', () => {
  assert.equal(pick({ DOCTOR_AGENT_BACKEND: 'cpu' }).out, 'cpu');
  assert.equal(pick({ DOCTOR_AGENT_BACKEND: '' }, 'cpu').out, 'cpu');
  assert.match(pick({ DOCTOR_AGENT_BACKEND: 'tensorflow' }).err, /backend "tensorflow" is not available \(forced by DOCTOR_AGENT_BACKEND\)/);
  assert.match(pick({ DOCTOR_AGENT_BACKEND: 'gpu' }).err, /DOCTOR_AGENT_BACKEND=gpu is not a backend: use one of tensorflow, wasm, cpu/);
});
