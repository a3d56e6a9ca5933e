/**
 * The eval.sglang step and the served API take the same sampling values: what the step accepts
 * the server accepts, so an out-of-range temperature is a compile error at the step, not an
 * HTTP 400 on every item at run time. The RL steps too, whose rollouts may go to a server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChatRequest, CompletionRequest } from '../../evaluation/api.ts';
import { EvalSglangParams } from '../../dsl/kinds/eval-sglang.ts';
import { GrpoParams } from '../../dsl/kinds/grpo.ts';
import { PpoParams } from '../../dsl/kinds/ppo.ts';
import { compileFile, CompileError } from '../../dsl/compile.ts';

const base = { server: { base_url: 'http://127.0.0.1:30000/v1', model: 'm' }, api: 'chat', data: 'e.json' };

test('every temperature and top_p the step accepts, the server accepts, and the other way round', () => {
  for (const temperature of [-0.5, 0, 0.5, 1.9999, 2, 2.0001, 2.5, 10]) {
    const step = EvalSglangParams.safeParse({ ...base, temperature }).success;
    const completions = CompletionRequest.safeParse({ prompt: 'x', temperature }).success;
    const chat = ChatRequest.safeParse({ messages: [{ role: 'user', content: 'x' }], temperature }).success;
    assert.equal(step, completions, `temperature ${temperature}: step ${step}, /v1/completions ${completions}`);
    assert.equal(step, chat, `temperature ${temperature}: step ${step}, /v1/chat/completions ${chat}`);
  }
  for (const top_p of [0, 0.01, 0.9, 1, 1.01]) {
    assert.equal(EvalSglangParams.safeParse({ ...base, top_p }).success, CompletionRequest.safeParse({ prompt: 'x', top_p }).success, `top_p ${top_p}`);
  }
});

test('every temperature an RL step accepts, a rollout server accepts; above 2 is refused at the step', () => {
  // rollout: sends the step's temperature to /v1/completions. 0 stays refused by the RL kinds:
  // their log-probs divide the logits by temperature + 1e-7.
  const rl = { policy: 'p', data: 'd.json', verifier: { type: 'rule' } };
  for (const [name, kind] of [['rl.grpo', GrpoParams], ['rl.ppo', PpoParams]] as const) {
    for (const temperature of [0.01, 0.5, 1.9999, 2, 2.0001, 2.5, 10]) {
      const step = kind.safeParse({ ...rl, temperature }).success;
      const served = CompletionRequest.safeParse({ prompt: [1, 2], temperature }).success;
      assert.equal(step, served, `${name} temperature ${temperature}: step ${step}, /v1/completions ${served}`);
    }
    for (const temperature of [-0.5, 0]) assert.equal(kind.safeParse({ ...rl, temperature }).success, false, `${name} temperature ${temperature}`);
  }
});

test('temperature 2.5 in an RL step is a compile error at its line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sampling-'));
  try {
    for (const kind of ['rl.grpo', 'rl.ppo']) {
      const file = join(dir, 'p.yaml');
      writeFileSync(file, `name: t\nsteps:\n  - id: g\n    uses: ${kind}\n    with:\n      policy: p\n      data: d.json\n      verifier: { type: rule }\n      temperature: 2.5\n`);
      assert.throws(() => compileFile(file, { cwd: dir }), (e: unknown) => {
        assert.ok(e instanceof CompileError, String(e));
        assert.equal(e.diagnostics.length, 1, JSON.stringify(e.diagnostics));
        assert.equal(e.diagnostics[0].line, 9);
        assert.match(e.diagnostics[0].message, /^with\.temperature: must be <= 2/);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('temperature 2.5 in an eval step is a compile error at its line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sampling-'));
  try {
    const file = join(dir, 'p.yaml');
    writeFileSync(file, 'name: t\nsteps:\n  - id: e\n    uses: eval.sglang\n    with:\n      model: m\n      data: e.json\n      temperature: 2.5\n');
    assert.throws(() => compileFile(file, { cwd: dir }), (e: unknown) => {
      assert.ok(e instanceof CompileError, String(e));
      assert.equal(e.diagnostics.length, 1);
      assert.equal(e.diagnostics[0].line, 8);
      assert.match(e.diagnostics[0].message, /^with\.temperature: must be <= 2/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('doctor-agent eval refuses --temperature above the served range before sending anything', async () => {
  const { execFile } = await import('node:child_process');
  const root = join(import.meta.dirname, '../..');
  const run = (t: string) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [join(root, 'bin/doctor-agent.js'), 'eval', '--data', join(root, 'samples/eval-format-sample.json'),
      '--base-url', 'http://127.0.0.1:9/v1', '--model-name', 'm', '--api', 'chat', '--temperature', t], { cwd: root, timeout: 60_000 },
    (err, _stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }));
  });
  const r = await run('2.5');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--temperature <t>.*expected a number >= 0 and <= 2, got "2\.5"/);
});
