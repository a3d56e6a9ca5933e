/**
 * Durability on a real dev server: a worker killed with SIGKILL in the middle of a
 * checkpointing job, and the server itself stopped and restarted mid-run. In both
 * cases the run completes with the same result as an uninterrupted one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { parseJobLine } from '../../contract/protocol.ts';
import { runView, startRun } from '../../runtime/runs.ts';
import { pidAlive, serverPaths, startServer, stopServer } from '../../runtime/temporal.ts';
import { FIXTURES, makePlan, spawnWorker, startTestServer, startWorker, waitFor } from './helpers.ts';

const COUNTER = join(FIXTURES, 'counter.mjs');

function counterPlan(name: string, n: number, delay: number) {
  return makePlan(name, [{
    id: 'count',
    with: {
      run: [process.execPath, COUNTER, '--n', n, '--delay', delay, '--every', 5],
      checkpoints: 'ckpt/step-*.json',
      resume_args: ['--resume', '{checkpoint}'],
      outputs: { result: 'result.json' },
    },
    outputs: ['acc', 'result'],
    retry: { maximumAttempts: 5, initialIntervalMs: 200, backoffCoefficient: 1, maximumIntervalMs: 200 },
    timeouts: { stepMs: 120_000, attemptMs: 60_000, heartbeatMs: 2000 },
  }]);
}

/** The accumulator of an uninterrupted run, computed by running the job directly. */
async function uninterrupted(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'counter-'));
  try {
    const r = await execa(process.execPath, [COUNTER, '--n', String(n), '--delay', '0', '--every', '5'], { cwd: dir });
    const last = r.stdout.split('\n').map(parseJobLine).filter((m) => m?.type === 'result').pop();
    if (last?.type !== 'result') throw new Error(`counter.mjs gave no result:\n${r.stdout}`);
    return last.outputs.acc as number;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const starts = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map(Number);

test('durability on a real dev server', async (t) => {
  const s = await startTestServer(t);

  await t.test('kill -9 of the worker mid-job: a new worker resumes from the last checkpoint', async () => {
    const n = 40;
    const expected = await uninterrupted(n);
    const first = spawnWorker(s);
    const h = await startRun(s.client, counterPlan('killed', n, 100));
    const stepDir = s.store.stepPath(h.workflowId, 'count');
    await waitFor('a checkpoint at item 10', () => existsSync(join(stepDir, 'ckpt', 'step-10.json')) || undefined, 60_000);
    const jobPid = Number(readFileSync(join(stepDir, 'pid'), 'utf8'));
    const live = await runView(s.client, h.workflowId);
    assert.ok((live.progress?.steps[0].progress?.current ?? 0) >= 1, 'no live progress from heartbeats');
    first.kill('SIGKILL');
    await first;
    await waitFor('the orphaned job to die', () => !pidAlive(jobPid) || undefined, 10_000);

    const second = spawnWorker(s);
    t.after(async () => {
      second.kill('SIGTERM');
      await second;
    });
    const r = await h.result();
    assert.equal(r.steps.count.outputs?.acc, expected);
    assert.deepEqual(JSON.parse(readFileSync(r.steps.count.outputs?.result as string, 'utf8')), { n, acc: expected });
    const s0 = starts(join(stepDir, 'starts.log'));
    assert.equal(s0.length, 2, `starts: ${s0}`);
    assert.equal(s0[0], 0);
    assert.ok(s0[1] >= 10, `the second attempt started over (from item ${s0[1]})`);
    second.kill('SIGTERM');
    await second;
  });

  await t.test('the dev server stops and restarts mid-run: the run completes', async () => {
    await startWorker(t, s);
    const n = 30;
    const expected = await uninterrupted(n);
    const h = await startRun(s.client, counterPlan('restart', n, 100));
    const stepDir = s.store.stepPath(h.workflowId, 'count');
    await waitFor('a first checkpoint', () => existsSync(join(stepDir, 'ckpt', 'step-5.json')) || undefined, 60_000);
    assert.equal(await stopServer(serverPaths(s.store)), true);
    await sleep(1000);
    const { info, started } = await startServer(serverPaths(s.store), { ownerPid: process.pid });
    assert.equal(started, true);
    assert.equal(info.address, s.address, 'the server came back on another port');
    const r = await h.result();
    assert.equal(r.steps.count.outputs?.acc, expected);
  });
});

