/** The `command` step under the supervisor: argv without a shell, env, cwd, outputs, progress, exit codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { superviseJob, type JobState, type SuperviseOptions } from '../../runtime/supervisor.ts';
import { JobFailedError, JobUserError } from '../../runtime/errors.ts';
import { FIXTURES, alive, tempDir } from '../fixtures/jobs/util.ts';

const node = process.execPath;

function cmd(params: Record<string, unknown>, extra: Partial<SuperviseOptions> = {}): SuperviseOptions {
  const outDir = join(tempDir(), 'steps', 's1');
  mkdirSync(outDir, { recursive: true });
  return { kind: 'command', runId: 'run-7', stepId: 's1', attempt: 1, params, outDir, ...extra };
}

test('argv goes to the program as written: no shell unless asked; env, cwd and placeholders', async () => {
  const o = cmd({
    run: [node, join(FIXTURES, 'report.mjs'), 'report.json', '$HOME', 'a;b', '*', '`id`', '{out_dir}', '{run_id}/{attempt}', 41, true],
    env: { TEST_GREETING: 'hi from {step_id}', TEST_EPOCHS: 3 },
  });
  await superviseJob(o);
  const r = JSON.parse(readFileSync(join(o.outDir, 'report.json'), 'utf8'));
  assert.deepEqual(r.args, ['$HOME', 'a;b', '*', '`id`', o.outDir, 'run-7/1', '41', 'true'], 'numbers from resolved expressions arrive as text');
  assert.equal(r.cwd, o.outDir);
  assert.equal(r.env.TEST_GREETING, 'hi from s1');
  assert.equal(r.env.TEST_EPOCHS, '3');
  assert.equal(r.env.DOCTOR_AGENT_OUT_DIR, o.outDir);
  assert.equal(r.env.DOCTOR_AGENT_RUN_ID, 'run-7');
  assert.equal(r.env.DOCTOR_AGENT_STEP_ID, 's1');
  assert.equal(r.env.DOCTOR_AGENT_ATTEMPT, '1');
  assert.equal(r.env.DOCTOR_AGENT_RESUME_FROM, undefined);

  // A relative cwd is taken from the step folder; a missing one is a user error.
  const o2 = cmd({ run: [node, join(FIXTURES, 'report.mjs'), 'r.json'], cwd: 'work' });
  mkdirSync(join(o2.outDir, 'work'));
  await superviseJob(o2);
  assert.equal(JSON.parse(readFileSync(join(o2.outDir, 'work', 'r.json'), 'utf8')).cwd, join(o2.outDir, 'work'));
  await assert.rejects(superviseJob({ ...o2, params: { ...o2.params, cwd: 'nowhere' } }), (e: unknown) =>
    e instanceof JobUserError && /working folder .*nowhere does not exist/.test(e.message) && e.where === 'steps.s1.with.cwd');
});

test('shell: true runs the text through /bin/sh', async () => {
  const o = cmd({ run: 'echo "$TEST_V" > shell.txt; echo second >> shell.txt', shell: true, env: { TEST_V: 'first' } });
  await superviseJob(o);
  assert.equal(readFileSync(join(o.outDir, 'shell.txt'), 'utf8'), 'first\nsecond\n');
  // Without shell: true a string is refused, saying what to write.
  await assert.rejects(superviseJob({ ...o, params: { run: 'echo hi' } }), (e: unknown) =>
    e instanceof JobUserError && /with\.run: run must be an argv array/.test(e.message) && e.where === 'steps.s1.with.run');
});

test('declared outputs: absolute paths when written, a user error naming the missing one', async () => {
  const o = cmd({ run: 'mkdir -p model && echo w > model/weights.bin && echo m > metrics.json', shell: true, outputs: { model: 'model', metrics: 'metrics.json' } });
  const out = await superviseJob(o);
  assert.deepEqual(out.outputs, { model: join(o.outDir, 'model'), metrics: join(o.outDir, 'metrics.json') });

  const o2 = cmd({ run: 'echo m > metrics.json', shell: true, outputs: { metrics: 'metrics.json', model: 'model' } });
  await assert.rejects(superviseJob(o2), (e: unknown) => {
    assert.ok(e instanceof JobUserError, String(e));
    assert.match(e.message, /declared output "model" was not written/);
    assert.equal(e.where, 'steps.s1.with.outputs.model');
    return true;
  });
});

test('progress from a regex over the log, and from protocol lines a command prints', async () => {
  const states: JobState[] = [];
  const o = cmd(
    { run: [node, join(FIXTURES, 'counter.mjs'), '--steps', '12', '--every', '5'], progress_regex: 'step (?<current>\\d+)/(?<total>\\d+)' },
    { onState: (s) => states.push(s) },
  );
  const out = await superviseJob(o);
  const seen = states.filter((s) => s.progress).map((s) => s.progress!.current);
  assert.deepEqual([...new Set(seen)], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(states.at(-1)!.progress!.total, 12);
  assert.deepEqual(states.at(-1)!.checkpoint, { path: join(o.outDir, 'ckpt', 'step-0010'), step: 10 });
  assert.deepEqual(out.checkpoint, { path: join(o.outDir, 'ckpt', 'step-0010'), step: 10 });
  // A regex without a `current` group is refused before anything runs.
  await assert.rejects(superviseJob({ ...o, params: { ...o.params, progress_regex: 'step (\\d+)' } }), (e: unknown) =>
    e instanceof JobUserError && /named group \(\?<current>/.test(e.message) && e.where === 'steps.s1.with.progress_regex');
});

test('exit codes: success_codes, crash with log tail, user error from the protocol, missing program, unusable argv', async () => {
  const exit3 = `console.log("working"); console.error("bad thing"); process.exit(3)`;
  await superviseJob(cmd({ run: [node, '-e', exit3], success_codes: [0, 3] }));
  await assert.rejects(superviseJob(cmd({ run: [node, '-e', exit3] })), (e: unknown) => {
    assert.ok(e instanceof JobFailedError, String(e));
    assert.equal(e.exitCode, 3);
    assert.equal(e.logTail, 'working\nbad thing');
    assert.match(e.message, /step "s1" \(command\) exited with code 3/);
    return true;
  });
  const userErr = `console.log(JSON.stringify({type:"error",user:true,message:"no such split: tset",where:"config.yaml:4:9",hint:"use test"})); process.exit(2)`;
  await assert.rejects(superviseJob(cmd({ run: [node, '-e', userErr] })), (e: unknown) =>
    e instanceof JobUserError && e.message === 'no such split: tset' && e.where === 'config.yaml:4:9' && e.hint === 'use test');
  await assert.rejects(superviseJob(cmd({ run: [node, '-e', 'process.kill(process.pid, "SIGSEGV")'] })), (e: unknown) =>
    e instanceof JobFailedError && e.signal === 'SIGSEGV' && /killed by SIGSEGV/.test(e.message));
  await assert.rejects(superviseJob(cmd({ run: ['no-such-program-anywhere', '--x'] })), (e: unknown) =>
    e instanceof JobUserError && /cannot start "no-such-program-anywhere"/.test(e.message) && e.where === 'steps.s1.with.run');
  // An argument the OS cannot take (NUL byte): refused before any process exists, same class of error.
  await assert.rejects(superviseJob(cmd({ run: ['true', 'a\u0000b'] })), (e: unknown) =>
    e instanceof JobUserError && /cannot start "true"/.test(e.message) && e.where === 'steps.s1.with.run');
});

test('whatever the job leaves running in its process group is killed when it exits', async () => {
  const states: JobState[] = [];
  const o = cmd({ run: [node, join(FIXTURES, 'spawn-grandchild.mjs')] });
  let grandchild = 0;
  const logFile = join(o.outDir, 'step.log');
  await superviseJob({ ...o, logFile, onState: (s) => states.push(s) });
  grandchild = Number(/grandchild (\d+)/.exec(readFileSync(logFile, 'utf8'))![1]);
  assert.ok(grandchild > 0);
  await sleep(200);
  assert.equal(alive(grandchild), false);
});

test('checkpoints a command writes without telling are found while it runs', async () => {
  const states: JobState[] = [];
  const o = cmd(
    { run: 'mkdir -p ck/s-1 && echo a > ck/s-1/w && sleep 3 && mkdir -p ck/s-2 && echo b > ck/s-2/w && sleep 2.5', shell: true, checkpoints: 'ck/*' },
    { onState: (s) => states.push(s) },
  );
  const out = await superviseJob(o);
  const seen = [...new Set(states.map((s) => s.checkpoint?.path).filter(Boolean))];
  assert.deepEqual(seen, [join(o.outDir, 'ck', 's-1'), join(o.outDir, 'ck', 's-2')]);
  assert.deepEqual(out.checkpoint, { path: join(o.outDir, 'ck', 's-2'), step: 2 });
});
