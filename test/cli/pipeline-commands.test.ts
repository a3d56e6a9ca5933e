/** The CLI as a user runs it: `node bin/doctor-agent.js ...`, exit codes and output (few spawns: each starts a node process). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileFile } from '../../dsl/compile.ts';
import { pipelineJsonSchema } from '../../dsl/json-schema.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/doctor-agent.js', ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('validate: ok files pass, a bad one prints FILE:LINE:COL, the line and a caret, exit 1, no stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: bad\nsteps:\n  - id: a\n    uses: train.sfx\n  - id: b\n    uses: command\n    needs: c\n    with: { run: [echo] }\n');
  const r = cli('validate', 'pipelines/huatuo.yaml', bad);
  assert.equal(r.code, 1);
  assert.match(r.out, /pipelines\/huatuo\.yaml: ok \(huatuo, 6 steps\)/);
  assert.ok(r.err.includes(`${bad}:4:11: unknown step kind 'train.sfx' (did you mean 'train.sft'?)`), r.err);
  assert.ok(r.err.includes(`${bad}:7:12: needs unknown step 'c'`), r.err);
  assert.ok(r.err.includes('  4 |     uses: train.sfx\n    |           ^'), r.err);
  assert.match(r.err, /2 errors\n$/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
});

test('bad records in a data file are a user error: the records and the hint, exit 1, no stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const data = join(dir, 'eval.json');
  writeFileSync(data, '[{"question": 1}]');
  // The data is read before any request: the server address is never contacted.
  const r = cli('eval', '--data', data, '--base-url', 'http://127.0.0.1:9/v1', '--model-name', 'm', '--out', join(dir, 'out'));
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /^error: .*eval\.json: 1 bad record\(s\):\n  .*record \[0\]: field "question"/);
  assert.match(r.err, /\n  fix the records listed, or set on_bad_record: skip/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
});

test('compile --json prints exactly the Plan the compiler returns', () => {
  const r = cli('compile', 'pipelines/huatuo-tiny.yaml', '--json', '--set', 'seed=7');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), compileFile('pipelines/huatuo-tiny.yaml', { cwd: root, set: ['seed=7'] }));
  const summary = cli('compile', 'pipelines/huatuo.yaml');
  assert.equal(summary.code, 0, summary.err);
  assert.match(summary.out, /^huatuo: 6 steps \(plan [0-9a-f]{12}, format 1\)/);
  assert.match(summary.out, /grpo +rl\.grpo +queue gpu .* if false/);
});

test('plan draws layers, edges, kinds and queues; --params and --set apply', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  writeFileSync(join(dir, 'p.yaml'), 'rl: grpo\n');
  const r = cli('plan', 'pipelines/huatuo.yaml', '--params', join(dir, 'p.yaml'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^huatuo: 6 steps in 5 layers/);
  assert.match(r.out, /layer 4 +\(2 steps may run in parallel\)\n +┌─ ppo +rl\.ppo +queue gpu +◀── sft, verifiable +\[if false: skipped\]\n +└─ grpo +rl\.grpo +queue gpu/);
  assert.match(r.out, /edges:\n +verifiable ──▶ search, ppo, grpo\n/);
});

test('a missing required param says how to pass it', () => {
  const r = cli('validate', 'pipelines/nightly-eval.yaml');
  assert.equal(r.code, 1);
  assert.match(r.err, /pipelines\/nightly-eval\.yaml:\d+:3: param 'checkpoint' is required: pass --set checkpoint=PATH/);
});

test('steps lists the kinds and shows one kind; schema prints the JSON Schema; --help everywhere', () => {
  const list = cli('steps');
  assert.equal(list.code, 0);
  assert.match(list.out, /train\.sft +gpu +checkpoint +Supervised fine-tuning/);
  const one = cli('steps', 'rl.ppo');
  assert.match(one.out, /kl_coef +number +0\.03 /);
  assert.match(one.out, /outputs:\n {2}checkpoint — /);
  const schema = cli('schema');
  assert.deepEqual(JSON.parse(schema.out), pipelineJsonSchema());
  const help = cli('--help');
  for (const cmd of ['validate', 'compile', 'plan', 'steps', 'schema']) assert.match(help.out, new RegExp(`\\n  ${cmd}\\b`));
});
