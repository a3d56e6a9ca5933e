/**
 * On a real dev server, with kill -9:
 * - `resume` of a run whose step failed (its job killed, no retries left): the new run's step
 *   continues from the newest valid checkpoint of the old run's step; finished steps come from
 *   the cache; a step whose resolved parameters changed starts from zero and says so in its log;
 * - `status` of a run whose worker died: the step waits for its heartbeat timeout, and says
 *   how long is left and what comes next;
 * - a step's `grace`: its job gets that long between SIGTERM and SIGKILL when cancelled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import type { StepInput } from './helpers.ts';
import { cancelRun, resumeRun, startRun } from '../../runtime/runs.ts';
import { pidAlive } from '../../runtime/temporal.ts';
import { progressQuery } from '../../workflows/definitions.ts';
import type { pipeline } from '../../workflows/pipeline.ts';
import { cliFor, FIXTURES, makePlan, nodeEval, spawnWorker, startTestServer, startWorker, waitFor } from './helpers.ts';

const COUNTER = join(FIXTURES, 'counter.mjs');
const once = { maximumAttempts: 1, initialIntervalMs: 100, backoffCoefficient: 1, maximumIntervalMs: 100 };

function counterStep(n: number, over: Partial<StepInput> = {}, env: Record<string, string> = {}): StepInput {
  return {
    id: 'count',
    needs: ['prep'],
    with: {
      run: [process.execPath, COUNTER, '--n', n, '--delay', 100, '--every', 5],
      env,
      checkpoints: 'ckpt/step-*.json',
      resume_args: ['--resume', '{checkpoint}'],
      outputs: { result: 'result.json' },
    },
    outputs: ['acc', 'result'],
    retry: once,
    ...over,
  };
}

const prep = (marker: string): StepInput => ({
  id: 'prep', cache: true,
  with: { run: nodeEval(`require('fs').appendFileSync(${JSON.stringify(marker)}, 'x'); require('fs').writeFileSync('p.txt', ${JSON.stringify(marker)})`), outputs: { file: 'p.txt' } },
  outputs: ['file'],
});

const starts = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map(Number);

test('durability of failed runs, dead workers and cancelled jobs on a real dev server', async (t) => {
  const s = await startTestServer(t);
  await startWorker(t, s);

  /** Starts the plan, kills its counter job with SIGKILL once checkpoint `at` is written; the run fails. */
  async function failAfterCheckpoint(name: string, steps: StepInput[], at: number): Promise<string> {
    const h = await startRun(s.client, makePlan(name, steps));
    const stepDir = s.store.stepPath(h.workflowId, 'count');
    await waitFor(`a checkpoint at item ${at}`, () => existsSync(join(stepDir, 'ckpt', `step-${at}.json`)) || undefined, 60_000);
    process.kill(Number(readFileSync(join(stepDir, 'pid'), 'utf8')), 'SIGKILL');
    await assert.rejects(h.result(), WorkflowFailedError);
    return h.workflowId;
  }

  await t.test('resume of a failed run: the failed step continues from the old run\'s newest checkpoint', async () => {
    const marker = join(s.store.root, 'prep-runs-1');
    const old = await failAfterCheckpoint('resume-ckpt', [prep(marker), counterStep(30)], 10);
    const oldDir = s.store.stepPath(old, 'count');
    const newest = Math.max(...[10, 15, 20, 25].filter((i) => existsSync(join(oldDir, 'ckpt', `step-${i}.json`))));

    const again = await resumeRun(s.client, old, true);
    assert.equal(again.kind, 'restarted');
    const h = s.client.workflow.getHandle<typeof pipeline>(again.id);
    const r = await h.result();
    assert.equal(r.steps.prep.state, 'cached', 'a finished step comes from the cache');
    assert.equal(readFileSync(marker, 'utf8'), 'x', 'prep ran once');
    const newDir = s.store.stepPath(again.id, 'count');
    assert.notEqual(newDir, oldDir);
    assert.deepEqual(starts(join(newDir, 'starts.log')), [newest], 'the new run\'s step started where the old one had its newest checkpoint');
    assert.deepEqual(JSON.parse(readFileSync(r.steps.count.outputs?.result as string, 'utf8')).n, 30);
    const log = readFileSync(join(newDir, 'step.log'), 'utf8');
    assert.match(log, new RegExp(`continuing step "count" of run ${old} from its newest valid checkpoint .*step-${newest}\\.json`));
    const p = await h.query(progressQuery);
    assert.equal(p.steps.find((x) => x.id === 'count')?.resumedFrom, join(oldDir, 'ckpt', `step-${newest}.json`));
  });

  await t.test('resume of a failed run whose step resolves to other params: from zero, and the log says why', async () => {
    const marker = join(s.store.root, 'prep-runs-2');
    const old = await failAfterCheckpoint('resume-changed', [prep(marker), counterStep(20, {}, { RUN: '${{ run.id }}' })], 5);
    const again = await resumeRun(s.client, old, true);
    const r = await s.client.workflow.getHandle<typeof pipeline>(again.id).result();
    assert.equal(r.steps.count.state, 'succeeded');
    const newDir = s.store.stepPath(again.id, 'count');
    assert.deepEqual(starts(join(newDir, 'starts.log')), [0]);
    assert.match(readFileSync(join(newDir, 'step.log'), 'utf8'), new RegExp(`step "count" of run ${old} is not the same step \\(its resolved parameters changed\\): starting from zero`));
  });

  await t.test('a step whose output is its own folder (with its .step.json record) is still a cache hit', async () => {
    const plan = makePlan('own-folder', [{
      id: 'whole', cache: true, outputs: ['dir'],
      with: { run: nodeEval(`require('fs').writeFileSync('a.txt', 'a')`), outputs: { dir: '.' } },
    }]);
    const first = await (await startRun(s.client, plan)).result();
    assert.equal(first.steps.whole.state, 'succeeded');
    const second = await (await startRun(s.client, plan)).result();
    assert.equal(second.steps.whole.state, 'cached');
  });

  await t.test('status of a run whose worker was killed: the step waits for its heartbeat timeout', async () => {
    const queue = 'status-q';
    const first = spawnWorker(s, queue);
    const plan = makePlan('dead-worker', [{
      ...counterStep(60), needs: [], queue,
      retry: { maximumAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 1, maximumIntervalMs: 200 },
      timeouts: { stepMs: 120_000, attemptMs: 60_000, heartbeatMs: 30_000 },
    }]);
    const h = await startRun(s.client, plan);
    const stepDir = s.store.stepPath(h.workflowId, 'count');
    await waitFor('a checkpoint at item 5', () => existsSync(join(stepDir, 'ckpt', 'step-5.json')) || undefined, 60_000);
    const jobPid = Number(readFileSync(join(stepDir, 'pid'), 'utf8'));
    first.kill('SIGKILL');
    await first;
    await waitFor('the orphaned job to die', () => !pidAlive(jobPid) || undefined, 10_000);
    await sleep(6000); // longer than a live worker ever stays silent

    const cli = cliFor(s);
    const st = await cli('status', h.workflowId);
    assert.equal(st.exitCode, 0, st.stderr);
    assert.match(st.stdout, /count\s+running/);
    assert.match(st.stdout, /waiting: attempt 1: last heartbeat \d+s ago \(its worker may have died\): it waits for its heartbeat timeout \(30s\), which runs out at \S+ \(in \d+s\); then attempt 2 of 3 starts/);
    // A slow machine may see the next phase by now: the timeout passed, or the retry waiting for a worker.
    const json = JSON.parse((await cli('status', h.workflowId, '--json')).stdout) as { waits?: { step: string; why: string }[] };
    assert.equal(json.waits?.[0]?.step, 'count');
    assert.ok(['silent', 'timed-out', 'no-worker'].includes(json.waits![0].why), json.waits![0].why);

    const second = spawnWorker(s, queue);
    t.after(async () => {
      second.kill('SIGTERM');
      await second;
    });
    const r = await h.result();
    assert.equal(r.steps.count.state, 'succeeded');
    assert.ok(starts(join(stepDir, 'starts.log'))[1] >= 5, 'the retry resumed from the checkpoint');
    second.kill('SIGTERM');
    await second;
  });

  await t.test('a step\'s grace: SIGKILL that long after SIGTERM when the run is cancelled', async () => {
    // The job checkpoints slowly on SIGTERM (1.5 s): a grace of 300ms does not wait for it, one of 20s does.
    const job = nodeEval(`const fs = require('fs');
      process.on('SIGTERM', () => setTimeout(() => { fs.writeFileSync('late.txt', 'x'); process.exit(143); }, 1500));
      fs.writeFileSync('started.txt', 'x'); setInterval(() => {}, 1000);`);
    for (const [grace, late] of [[300, false], [20_000, true]] as const) {
      const h = await startRun(s.client, makePlan(`grace-${grace}`, [{
        id: 'slow', with: { run: job }, timeouts: { stepMs: 120_000, attemptMs: 60_000, heartbeatMs: 10_000, graceMs: grace },
      }]));
      const dir = s.store.stepPath(h.workflowId, 'slow');
      await waitFor('the job to start', () => existsSync(join(dir, 'started.txt')) || undefined, 30_000);
      await cancelRun(s.client, h.workflowId);
      await assert.rejects(h.result());
      await sleep(2500);
      assert.equal(existsSync(join(dir, 'late.txt')), late, `grace ${grace} ms`);
    }
  });
});
