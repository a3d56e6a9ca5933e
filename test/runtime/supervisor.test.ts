/** The supervisor with built-in jobs: jobs/main.ts loading a test job module, the protocol end to end, failure classes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { superviseJob, type JobState } from '../../runtime/supervisor.ts';
import { JobFailedError, JobUserError } from '../../runtime/errors.ts';
import { FIXTURES, tempDir } from '../fixtures/jobs/util.ts';

process.env.DOCTOR_AGENT_JOBS_DIR = FIXTURES;

function options(params: Record<string, unknown>, extra: Partial<Parameters<typeof superviseJob>[0]> = {}) {
  const outDir = join(tempDir(), 'step');
  mkdirSync(outDir);
  return { kind: 'test.echo', runId: 'r1', stepId: 'echo', attempt: 1, params, outDir, ...extra };
}

test('a built-in job speaks the protocol end to end', async () => {
  const o = options({ text: 'hello' });
  const logFile = join(o.outDir, 'step.log');
  const metricsFile = join(o.outDir, 'metrics.jsonl');
  const states: JobState[] = [];
  const out = await superviseJob({ ...o, logFile, metricsFile, onState: (s) => states.push(s) });

  const ckpt = join(o.outDir, 'checkpoints', 'step-1');
  assert.deepEqual(out.outputs, { echo: join(o.outDir, 'echo.txt'), text: 'hello', resumedFrom: null });
  assert.equal(readFileSync(join(o.outDir, 'echo.txt'), 'utf8'), 'hello');
  assert.deepEqual(out.checkpoint, { path: ckpt, step: 1 });
  assert.deepEqual(out.metrics, { loss: 1.25, lr: 0.001 });
  assert.ok(out.durationMs > 0);

  // States fold: progress, merged metrics, checkpoint, last log, the job's pid.
  const last = states.at(-1)!;
  assert.deepEqual(last.progress, { current: 2, total: 2, unit: undefined, message: undefined });
  assert.deepEqual(last.metrics, { loss: 1.25, lr: 0.001 });
  assert.equal(last.metricsStep, 2);
  assert.deepEqual(last.checkpoint, { path: ckpt, step: 1 });
  assert.match(last.lastLog!, /attempt 1, resume from nothing/);
  assert.ok(Number.isInteger(last.pid));
  assert.ok(states.some((s) => s.progress?.current === 1 && s.progress.message === 'halfway' && s.progress.unit === 'items'));

  // Metrics as JSON lines; every output line in the log; the spec the job was given.
  const metrics = readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(metrics.map((m) => [m.step, m.values]), [[1, { loss: 2.5, lr: 0.001 }], [2, { loss: 1.25 }]]);
  assert.ok(metrics.every((m) => !Number.isNaN(Date.parse(m.time))));
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /^=== .* attempt 1: /);
  assert.match(log, /plain log line from the job/);
  assert.match(log, /a line on stderr/);
  assert.match(log, /"type":"result"/);
  const spec = JSON.parse(readFileSync(join(o.outDir, '.job-spec.json'), 'utf8'));
  assert.deepEqual(spec, { kind: 'test.echo', module: join(FIXTURES, 'test.echo.ts'), runId: 'r1', stepId: 'echo', params: { text: 'hello' }, outDir: o.outDir, attempt: 1 });

  // A second attempt in the same folder is handed the checkpoint the first one left,
  // and the job starts the same from any current folder.
  const cwd = process.cwd();
  process.chdir(tempDir());
  try {
    const again = await superviseJob({ ...o, attempt: 2 });
    assert.equal(again.outputs.resumedFrom, ckpt);
  } finally {
    process.chdir(cwd);
  }
});

test('a user error is a JobUserError with where and hint; a crash is a JobFailedError with the log tail', async () => {
  await assert.rejects(superviseJob(options({ mode: 'user' })), (e: unknown) => {
    assert.ok(e instanceof JobUserError, String(e));
    assert.equal(e.message, 'column "answer" is missing');
    assert.equal(e.where, 'data.jsonl:3');
    assert.equal(e.hint, 'add the column');
    return true;
  });
  await assert.rejects(superviseJob(options({ mode: 'crash' })), (e: unknown) => {
    assert.ok(e instanceof JobFailedError, String(e));
    assert.equal(e.exitCode, 1);
    assert.equal(e.signal, null);
    assert.match(e.message, /step "echo" \(test.echo\) exited with code 1: Error: tensor shapes do not match/);
    assert.match(e.logTail, /attempt 1/);
    return true;
  });
  await assert.rejects(superviseJob(options({ mode: 'exit3' })), (e: unknown) => e instanceof JobFailedError && e.exitCode === 3);
});

test('an unknown kind is a user error that names the kind', async () => {
  const o = options({});
  await assert.rejects(superviseJob({ ...o, kind: 'no.such.kind' }), (e: unknown) => {
    assert.ok(e instanceof JobUserError, String(e));
    assert.match(e.message, /step kind "no.such.kind" has no built-in job/);
    assert.equal(e.where, 'steps.echo.runner');
    return true;
  });
  assert.ok(!existsSync(join(o.outDir, '.job-spec.json')), 'nothing was started');
});
