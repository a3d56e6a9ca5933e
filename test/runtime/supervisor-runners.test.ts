/**
 * Step kinds declare their runners; the supervisor launches the one a step names from that
 * declaration: the built-in TypeScript job, or an external program speaking the same protocol.
 * The compiler checks `runner:` and records it in the Plan; the cache hashes the runner's files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerKind } from '../../dsl/kinds/index.ts';
import { KnowledgeBaseParams } from '../../dsl/kinds/knowledge-base.ts';
import { compileFile, CompileError } from '../../dsl/compile.ts';
import { superviseJob } from '../../runtime/supervisor.ts';
import { CodeVersions } from '../../runtime/code-version.ts';
import { runnerFor } from '../../runtime/runners.ts';
import { JobUserError } from '../../runtime/errors.ts';
import { tempDir } from '../fixtures/jobs/util.ts';
import { ENGINE_MALLOC_ENV, engineProcessEnv } from '../../common/engine-env.ts';
import { z } from 'zod';

registerKind({
  name: 'test.protocol',
  description: 'A kind for the tests with a built-in job and an external program.',
  params: z.strictObject({ text: z.string().default(''), mode: z.enum(['ok', 'user']).default('ok') }),
  outputs: { text: 'the text' },
  queue: 'cpu',
  runners: {
    builtin: { type: 'builtin', module: 'test/fixtures/jobs/test.echo.ts' },
    script: { type: 'program', argv: ['node', 'test/fixtures/jobs/protocol-job.mjs'] },
  },
});

function step(extra: Partial<Parameters<typeof superviseJob>[0]> = {}) {
  const outDir = join(tempDir(), 'step');
  mkdirSync(outDir);
  return { kind: 'test.protocol', runId: 'r1', stepId: 'p', attempt: 1, params: { text: 'hi' }, outDir, ...extra };
}

test('a step with the external runner runs the declared program with the job spec, over the protocol', async () => {
  const o = step({ runner: 'script' });
  const out = await superviseJob({ ...o, logFile: join(o.outDir, 'step.log') });
  assert.deepEqual(out.outputs, { text: 'hi', kind: 'test.protocol', attempt: 1, resumedFrom: null, args: 1, specFromEnv: true });
  assert.deepEqual(out.checkpoint, { path: join(o.outDir, 'checkpoints', 'step-1'), step: 1 });
  assert.match(readFileSync(join(o.outDir, 'step.log'), 'utf8'), /attempt 1: node .*test\/fixtures\/jobs\/protocol-job\.mjs .*\.job-spec\.json/);
  const spec = JSON.parse(readFileSync(join(o.outDir, '.job-spec.json'), 'utf8'));
  assert.equal(spec.module, undefined, 'a program is not handed a job module');

  // A retry is handed the checkpoint the first attempt left, as a built-in job is.
  const again = await superviseJob({ ...o, attempt: 2 });
  assert.equal(again.outputs.resumedFrom, join(o.outDir, 'checkpoints', 'step-1'));

  // Its user errors are user errors.
  await assert.rejects(superviseJob({ ...step({ runner: 'script' }), params: { mode: 'user' } }), (e: unknown) => {
    assert.ok(e instanceof JobUserError, String(e));
    assert.equal(e.where, 'with.text');
    return true;
  });
});

test('without runner: the default, the built-in job the kind declares, started with the engine\'s environment', async () => {
  const o = step();
  const saved = process.env.MALLOC_MMAP_THRESHOLD_;
  delete process.env.MALLOC_MMAP_THRESHOLD_;
  let out;
  try {
    out = await superviseJob({ ...o, logFile: join(o.outDir, 'step.log') });
  } finally {
    if (saved !== undefined) process.env.MALLOC_MMAP_THRESHOLD_ = saved;
  }
  // Large tensors come from reused memory, not fresh mappings (common/engine-env.ts).
  assert.match(readFileSync(join(o.outDir, 'step.log'), 'utf8'), new RegExp(`malloc mmap threshold ${ENGINE_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_}\\b`));
  assert.equal(out.outputs.text, 'hi');
  assert.ok(out.outputs.echo, 'test.echo.ts ran (it reports an echo artifact)');
  assert.equal(JSON.parse(readFileSync(join(o.outDir, '.job-spec.json'), 'utf8')).module, join(import.meta.dirname, '../fixtures/jobs/test.echo.ts'));
});

test('a runner the kind does not declare is a user error at the step\'s runner, before anything starts', async () => {
  const o = step({ runner: 'python' });
  await assert.rejects(superviseJob(o), (e: unknown) => {
    assert.ok(e instanceof JobUserError, String(e));
    assert.match(e.message, /step kind "test.protocol" has no runner "python" \(its runners: builtin, script\)/);
    assert.equal(e.where, 'steps.p.runner');
    return true;
  });
});

test('the compiler checks runner: against the kind, records it in the Plan and its hash', () => {
  const dir = tempDir();
  const file = join(dir, 'p.yaml');
  const yaml = (runner: string) => `name: r\nsteps:\n  - id: a\n    uses: test.protocol\n${runner}    with: { text: x }\n`;
  writeFileSync(file, yaml(''));
  const byDefault = compileFile(file, { cwd: dir });
  assert.equal(byDefault.steps[0].runner, 'builtin');
  writeFileSync(file, yaml('    runner: script\n'));
  const scripted = compileFile(file, { cwd: dir });
  assert.equal(scripted.steps[0].runner, 'script');
  assert.notEqual(scripted.steps[0].hash, byDefault.steps[0].hash);

  writeFileSync(file, yaml('    runner: scirpt\n'));
  assert.throws(() => compileFile(file, { cwd: dir }), (e: unknown) => {
    assert.ok(e instanceof CompileError);
    assert.equal(e.diagnostics.length, 1);
    const d = e.diagnostics[0];
    assert.equal(d.line, 5);
    assert.equal(d.col, 13);
    assert.match(d.message, /^runner: test.protocol has no runner 'scirpt' \(did you mean 'script'\?\); its runners: builtin, script$/);
    return true;
  });

  writeFileSync(file, 'name: r\nsteps:\n  - id: a\n    uses: data.knowledge_base\n    runner: trl\n');
  assert.throws(() => compileFile(file, { cwd: dir }), /runner: data.knowledge_base has no runner 'trl'; its runners: builtin/);
  assert.ok(KnowledgeBaseParams);
});

test('the step cache keys on the step\'s runner, and hashes the program\'s file', async () => {
  assert.equal(runnerFor('test.protocol'), 'builtin');
  assert.equal(runnerFor('test.protocol', 'script'), 'script');
  assert.equal(runnerFor('command'), 'command');
  const versions = new CodeVersions();
  const script = await versions.get('script', 'test.protocol');
  assert.deepEqual(Object.keys(script.files), ['test/fixtures/jobs/protocol-job.mjs']);
  const builtin = await versions.get('builtin', 'test.protocol');
  assert.ok('test/fixtures/jobs/test.echo.ts' in builtin.files && 'jobs/main.ts' in builtin.files);
  assert.notEqual(script.sources, builtin.sources);
});

test('the engine\'s environment keeps what the user set', () => {
  assert.deepEqual(engineProcessEnv({ MALLOC_MMAP_THRESHOLD_: '1024' }), { MALLOC_TRIM_THRESHOLD_: ENGINE_MALLOC_ENV.MALLOC_TRIM_THRESHOLD_ });
  assert.deepEqual(engineProcessEnv({}), ENGINE_MALLOC_ENV);
});
