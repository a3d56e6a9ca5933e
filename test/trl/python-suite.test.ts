/**
 * The TRL runner's own Python tests (python/tests, unittest): the reward conformance file read
 * by both languages, the verifiers' HTTP client, GRPO and PPO on tiny models.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PROJECT_ROOT, pythonProcessEnv } from '../../common/python.ts';
import { requireTorchPython } from '../helpers/torch-python.ts';

test('python/tests pass with the TRL runner\'s Python', { timeout: 600_000 }, (t) => {
  const python = requireTorchPython(t);
  if (!python) return;
  const r = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'python/tests', '-t', 'python', '-v'], {
    cwd: PROJECT_ROOT, env: pythonProcessEnv(), encoding: 'utf8', timeout: 590_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, out.slice(-6000));
  const ran = /Ran (\d+) tests?/.exec(out);
  assert.ok(ran && Number(ran[1]) > 0, `no Python test ran:\n${out.slice(-2000)}`);
  assert.doesNotMatch(out, /skipped=/, `Python tests were skipped in an environment that has torch:\n${out.slice(-3000)}`);
});
