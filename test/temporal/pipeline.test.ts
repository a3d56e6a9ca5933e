/**
 * The Plan interpreter on a real Temporal dev server: outputs flowing between command
 * steps, conditions, parallel steps, user errors, cancellation, pause/resume and
 * continue-as-new. One server and one in-process worker for the whole file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import { isCancellation } from '@temporalio/workflow';
import { progressQuery } from '../../workflows/definitions.ts';
import { createSchedule, deleteSchedule, describeSchedule, pauseSchedule, scheduleRuns, triggerSchedule } from '../../runtime/schedules.ts';
import { listRuns, pauseRun, resumeRun, runView, startRun } from '../../runtime/runs.ts';
import { pidAlive } from '../../runtime/temporal.ts';
import { makePlan, nodeEval, startTestServer, startWorker, waitFor } from './helpers.ts';

const result = (outputs: string) => `console.log(JSON.stringify({type:'result',outputs:${outputs}}));`;
/** Node code: touch <dir>/<me>, then wait (at most 20 s) for <dir>/<other>. */
const meet = (me: string, other: string) =>
  `const fs = require('fs'), p = require('path'); fs.writeFileSync(p.join(process.argv[1], '${me}'), '');` +
  `const t0 = Date.now(); while (!fs.existsSync(p.join(process.argv[1], '${other}'))) { if (Date.now() - t0 > 20000) process.exit(9); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); }`;
/** Node code: write its pid to ./pid, then sleep (cancellation and pause tests). */
const sleeper = (ms: number) => `require('fs').writeFileSync('pid', String(process.pid)); setTimeout(() => {}, ${ms});`;

test('the Plan interpreter on a real dev server', async (t) => {
  const s = await startTestServer(t);
  await startWorker(t, s);

  await t.test('command steps pass outputs along, run in parallel, and honour if', async () => {
    const plan = makePlan('outputs', [
      // a and c each wait for the other to have started: this only passes if they run in parallel.
      { id: 'a', with: { run: [...nodeEval(meet('a', 'c') + result('{x: 41}')), '${{ run.dir }}'] }, outputs: ['x'] },
      { id: 'c', with: { run: [...nodeEval(meet('c', 'a') + `fs.writeFileSync('c.txt', 'hello');`), '${{ run.dir }}'], outputs: { file: 'c.txt' } }, outputs: ['file'] },
      { id: 'b', needs: ['a'], with: { run: [...nodeEval(result('{y: Number(process.argv[1]) + 1}')), '${{ steps.a.outputs.x }}'] }, outputs: ['y'] },
      { id: 'd', needs: ['b'], if: 'steps.b.outputs.y == 0', with: { run: nodeEval('process.exit(3)') } },
      { id: 'e', needs: ['d'], with: { run: nodeEval('process.exit(3)') } },
      { id: 'f', needs: ['b', 'c'], if: '${{ steps.b.outputs.y == 42 }}', with: { run: [...nodeEval(result('{got: process.argv[1]}')), 'run ${{ run.id }}: ${{ steps.b.outputs.y }}'] }, outputs: ['got'] },
    ]);
    const h = await startRun(s.client, plan, { searchAttributes: true });
    const r = await h.result();
    assert.equal(r.status, 'succeeded');
    assert.equal(r.steps.b.outputs?.y, 42);
    assert.equal(r.steps.d.state, 'skipped');
    assert.equal(r.steps.d.outputs, null);
    assert.equal(r.steps.e.state, 'skipped');
    assert.equal(r.steps.f.outputs?.got, `run ${h.workflowId}: 42`);
    assert.equal(readFileSync(r.steps.c.outputs?.file as string, 'utf8'), 'hello');
    assert.equal(r.runDir, s.store.runDir(h.workflowId));
    assert.equal(JSON.parse(readFileSync(join(r.runDir, 'plan.json'), 'utf8')).hash, plan.hash);
    const p = await h.query(progressQuery);
    assert.equal(p.status, 'succeeded');
    const e = p.steps.find((x) => x.id === 'e');
    assert.match(e?.reason ?? '', /needs d, which was skipped/);
    const view = await runView(s.client, h.workflowId);
    assert.equal(view.pipeline, 'outputs');
  });

  await t.test('a user error fails the run at once, with its message, without retries', async () => {
    const plan = makePlan('user-error', [
      { id: 'slow', with: { run: nodeEval(sleeper(60_000)) } },
      {
        id: 'bad',
        with: { run: nodeEval(`console.log(JSON.stringify({type:'error',user:true,message:'column "answer" missing in data/x.jsonl:7',hint:'add it'})); process.exit(2)`) },
        // Were it retried, the second attempt would come 30 s later.
        retry: { maximumAttempts: 5, initialIntervalMs: 30_000, backoffCoefficient: 1, maximumIntervalMs: 30_000 },
      },
    ]);
    const t0 = Date.now();
    const h = await startRun(s.client, plan);
    const err = await h.result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.match(String((err as Error & { cause?: Error }).cause?.message), /step "bad" failed: column "answer" missing in data\/x\.jsonl:7/);
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
    const p = await h.query(progressQuery);
    const bad = p.steps.find((x) => x.id === 'bad');
    const slow = p.steps.find((x) => x.id === 'slow');
    assert.equal(bad?.state, 'failed');
    assert.equal(slow?.state, 'cancelled');
    // The step that was still running was stopped, its process included.
    const pid = Number(readFileSync(join(s.store.stepDir(h.workflowId, 'slow'), 'pid'), 'utf8'));
    assert.equal(pidAlive(pid), false);
    const history = await h.fetchHistory();
    const attempts = history.events?.filter((e) => e.activityTaskStartedEventAttributes && e.activityTaskStartedEventAttributes.attempt !== 1) ?? [];
    assert.equal(attempts.length, 0);
  });

  await t.test('cancelling a run stops its job process', async () => {
    const plan = makePlan('cancel', [{ id: 'sleep', with: { run: nodeEval(sleeper(60_000)) } }]);
    const h = await startRun(s.client, plan);
    const pidFile = join(s.store.stepPath(h.workflowId, 'sleep'), 'pid');
    const pid = await waitFor('the job to start', () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined));
    assert.equal(pidAlive(pid), true);
    await h.cancel();
    const err = await h.result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(isCancellation((err as WorkflowFailedError).cause), String((err as WorkflowFailedError).cause));
    assert.equal(pidAlive(pid), false, 'the job process outlived the cancellation');
    assert.equal((await h.describe()).status.name, 'CANCELLED');
  });

  await t.test('pause stops new steps from starting; resume carries on', async () => {
    const plan = makePlan('pause', [
      { id: 'a', with: { run: nodeEval('setTimeout(() => {}, 800)') } },
      { id: 'b', needs: ['a'], with: { run: nodeEval('') } },
      { id: 'c', needs: ['b'], with: { run: nodeEval('') } },
    ]);
    const h = await startRun(s.client, plan, { searchAttributes: true });
    await pauseRun(s.client, h.workflowId);
    const paused = await waitFor('the run to settle while paused', async () => {
      const p = await h.query(progressQuery);
      return p.paused && p.steps.every((x) => x.state !== 'running') ? p : undefined;
    });
    assert.equal(paused.status, 'paused');
    await sleep(1500);
    const still = await h.query(progressQuery);
    assert.equal(still.steps.find((x) => x.id === 'c')?.state, 'pending');
    assert.deepEqual(still.steps.map((x) => x.state), paused.steps.map((x) => x.state), 'a step started while paused');
    const listed = await waitFor('the status search attribute', async () =>
      (await listRuns(s.client)).find((r) => r.id === h.workflowId && r.status === 'paused'));
    assert.equal(listed.pipeline, 'pause');
    assert.equal((await resumeRun(s.client, h.workflowId, true)).kind, 'signalled');
    const r = await h.result();
    assert.deepEqual(Object.values(r.steps).map((x) => x.state), ['succeeded', 'succeeded', 'succeeded']);
  });

  await t.test('a long chain continues as new and keeps every output', async () => {
    const n = 10;
    const steps = Array.from({ length: n }, (_, i) => ({
      id: `s${i}`,
      needs: i ? [`s${i - 1}`] : [],
      with: { run: [...nodeEval(result('{v: Number(process.argv[1] || 0) + 1}')), i ? `\${{ steps.s${i - 1}.outputs.v }}` : ''] },
      outputs: ['v'],
    }));
    const h = await startRun(s.client, makePlan('long', steps), { continueAsNewAfter: 3 });
    const r = await h.result();
    assert.equal(r.steps[`s${n - 1}`].outputs?.v, n);
    assert.equal(r.steps.s0.outputs?.v, 1);
    const p = await h.query(progressQuery);
    assert.equal(p.generation, 3);
    assert.equal(p.runDir, s.store.runDir(h.workflowId));
  });

  await t.test('resume of a failed run starts it again and reuses the cached steps', async () => {
    const marker = join(s.store.root, 'let-b-pass');
    const plan = makePlan('resume', [
      { id: 'a', cache: true, with: { run: nodeEval(`require('fs').appendFileSync(${JSON.stringify(join(s.store.root, 'a-runs'))}, 'x')`) } },
      { id: 'b', needs: ['a'], with: { run: nodeEval(`process.exit(require('fs').existsSync(${JSON.stringify(marker)}) ? 0 : 1)`) },
        retry: { maximumAttempts: 1, initialIntervalMs: 100, backoffCoefficient: 1, maximumIntervalMs: 100 } },
    ]);
    const h = await startRun(s.client, plan);
    await assert.rejects(h.result(), WorkflowFailedError);
    writeFileSync(marker, '');
    const again = await resumeRun(s.client, h.workflowId, true);
    assert.equal(again.kind, 'restarted');
    assert.notEqual(again.id, h.workflowId);
    const r = await s.client.workflow.getHandle(again.id).result();
    assert.equal(r.steps.a.state, 'cached');
    assert.equal(r.steps.b.state, 'succeeded');
    assert.equal(readFileSync(join(s.store.root, 'a-runs'), 'utf8'), 'x', 'step a ran twice');
  });

  await t.test('a schedule triggered by hand runs the pipeline', async () => {
    const plan = makePlan('nightly', [{ id: 'hello', with: { run: nodeEval(`require('fs').writeFileSync('hi.txt', 'hi')`), outputs: { file: 'hi.txt' } }, outputs: ['file'] }]);
    await createSchedule(s.client, { name: 'nightly-test', plan, cron: '0 3 * * *', timezone: 'Europe/Paris', searchAttributes: true });
    t.after(() => deleteSchedule(s.client, 'nightly-test').catch(() => {}));
    const d = await describeSchedule(s.client, 'nightly-test');
    assert.equal(d.policies.overlap, 'SKIP');
    assert.equal(d.spec.timezone, 'Europe/Paris');
    assert.ok(d.info.nextActionTimes.length > 0);
    assert.equal(d.info.recentActions.length, 0);
    await triggerSchedule(s.client, 'nightly-test');
    const [id] = await waitFor('the triggered run', async () => {
      const ids = await scheduleRuns(s.client, 'nightly-test');
      return ids.length ? ids : undefined;
    });
    assert.match(id, /^nightly-test-/);
    const r = await s.client.workflow.getHandle(id).result();
    assert.equal(readFileSync(r.steps.hello.outputs?.file as string, 'utf8'), 'hi');
    assert.equal(r.pipeline, 'nightly');
    await pauseSchedule(s.client, 'nightly-test');
    assert.equal((await describeSchedule(s.client, 'nightly-test')).state.paused, true);
  });
});
