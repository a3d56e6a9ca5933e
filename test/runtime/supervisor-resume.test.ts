/**
 * Checkpoints and process lifetime, with real processes: a command killed by SIGKILL
 * resumes from its newest valid checkpoint and ends exactly like an uninterrupted run;
 * cancellation gives the job its grace period; the job never outlives its supervisor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { superviseJob, PROJECT_ROOT, type SuperviseOptions } from '../../runtime/supervisor.ts';
import { JobCancelledError, JobFailedError } from '../../runtime/errors.ts';
import { findCheckpoints } from '../../runtime/checkpoints.ts';
import { FIXTURES, alive, tempDir, waitFor } from '../fixtures/jobs/util.ts';

const node = process.execPath;

function counter(outDir: string, delayMs: number): SuperviseOptions {
  return {
    kind: 'command',
    runId: 'r',
    stepId: 'count',
    attempt: 1,
    outDir,
    params: {
      run: [node, join(FIXTURES, 'counter.mjs'), '--steps', '40', '--every', '5', '--delay', String(delayMs)],
      checkpoints: 'ckpt/step-*',
      resume_args: ['--resume', '{checkpoint}'],
      progress_regex: 'step (?<current>\\d+)/(?<total>\\d+)',
    },
  };
}

function stepDir(): string {
  const d = join(tempDir(), 'count');
  mkdirSync(d);
  return d;
}

const readResult = (dir: string) => JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8'));

test('killed by SIGKILL, the command resumes from its newest valid checkpoint and ends like an uninterrupted run', async () => {
  const clean = stepDir();
  await superviseJob(counter(clean, 0));
  const expected = readResult(clean);
  assert.equal(expected.step, 40);
  assert.equal(expected.startedFrom, 0);

  // First attempt: killed outright once it has checkpointed step 15.
  const dir = stepDir();
  let heartbeat: { path: string; step?: number } | undefined;
  const first = counter(dir, 30);
  await assert.rejects(
    superviseJob({
      ...first,
      onState: (s) => {
        heartbeat = s.checkpoint;
        if (s.checkpoint?.step === 15 && s.pid) process.kill(s.pid, 'SIGKILL');
      },
    }),
    (e: unknown) => e instanceof JobFailedError && e.signal === 'SIGKILL',
  );
  assert.equal(existsSync(join(dir, 'result.json')), false);
  assert.ok(heartbeat && heartbeat.step! >= 15);
  // The job may have got a little further than the heartbeat before the kill landed.
  const newest = findCheckpoints(dir, 'ckpt/step-*').at(-1)!.step!;
  assert.ok(newest >= heartbeat.step! && newest < 40, `newest checkpoint on disk: ${newest}`);

  // Leftovers that must NOT be taken for checkpoints: a temp folder, an empty folder, an empty file.
  mkdirSync(join(dir, 'ckpt', '.tmp-999'), { recursive: true });
  writeFileSync(join(dir, 'ckpt', '.tmp-999', 'state.json'), '{"step":35,"acc":1}');
  mkdirSync(join(dir, 'ckpt', 'step-0035'));
  writeFileSync(join(dir, 'ckpt', 'step-0030.partial'), 'x');
  writeFileSync(join(dir, 'ckpt', 'step-0031'), '');

  // Second attempt: handed an older checkpoint by its heartbeat; the newer one on disk wins.
  const logFile = join(dir, 'step.log');
  const out = await superviseJob({ ...counter(dir, 0), attempt: 2, resumeFrom: join(dir, 'ckpt', 'step-0005'), logFile });
  const got = readResult(dir);
  assert.equal(got.startedFrom, newest, 'resumed from the newest valid checkpoint, not from scratch');
  assert.deepEqual({ step: got.step, acc: got.acc }, { step: expected.step, acc: expected.acc });
  assert.match(readFileSync(logFile, 'utf8'), new RegExp(`attempt 2 resuming from .*step-00${newest}: .*--resume .*step-00${newest}`));
  assert.deepEqual(out.checkpoint, { path: join(dir, 'ckpt', 'step-0040'), step: 40 });
});

test('cancellation: SIGTERM first, so a job that traps it can checkpoint; SIGKILL after the grace period', async () => {
  const dir = stepDir();
  const ac = new AbortController();
  const o = counter(dir, 40);
  const params = { ...o.params, run: [node, join(FIXTURES, 'counter.mjs'), '--steps', '100000', '--every', '1000', '--delay', '40'] };
  await assert.rejects(
    superviseJob({ ...o, params, signal: ac.signal, onState: (s) => { if ((s.progress?.current ?? 0) >= 3) ac.abort(); } }),
    (e: unknown) => {
      assert.ok(e instanceof JobCancelledError, String(e));
      assert.ok(e.checkpoint && e.checkpoint.step! >= 3, `checkpoint written on SIGTERM: ${JSON.stringify(e.checkpoint)}`);
      assert.equal(JSON.parse(readFileSync(join(e.checkpoint.path, 'state.json'), 'utf8')).step, e.checkpoint.step);
      return true;
    },
  );

  // A job that ignores SIGTERM is killed once the grace period is over.
  const stubborn = `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log(JSON.stringify({type:'progress',current:1})); setInterval(() => {}, 1000);`;
  const ac2 = new AbortController();
  let pid = 0;
  const t0 = Date.now();
  await assert.rejects(
    superviseJob({ ...o, params: { run: [node, '-e', stubborn] }, signal: ac2.signal, graceMs: 700, onState: (s) => { pid = s.pid!; ac2.abort(); } }),
    (e: unknown) => e instanceof JobCancelledError && /killed by SIGKILL/.test(e.message),
  );
  const took = Date.now() - t0;
  assert.ok(took >= 700, `waited the grace period (${took} ms)`);
  assert.equal(alive(pid), false);
});

test('the job dies with its supervisor, even when the supervisor is killed by SIGKILL', async () => {
  const dir = stepDir();
  const sup = spawn(node, ['--import', 'tsx', join(FIXTURES, 'supervise-one.ts'), dir], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const jobPid = await new Promise<number>((res, rej) => {
    const rl = createInterface({ input: sup.stdout! });
    rl.on('line', (l) => { const m = /^JOBPID (\d+)/.exec(l); if (m) res(Number(m[1])); });
    sup.once('exit', (code) => rej(new Error(`supervisor exited early (${code})`)));
  });
  assert.ok(alive(jobPid));
  sup.kill('SIGKILL');
  assert.ok(await waitFor(() => !alive(jobPid), 5000), `job ${jobPid} outlived its supervisor`);
});
