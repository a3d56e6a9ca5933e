/**
 * RL on a real dev server, checkpointing by wall-clock time only (save_every far above the
 * iterations, a tiny save_every_minutes), with kill -9:
 * - the worker running rl.grpo is killed: a new worker's attempt resumes from the newest
 *   time-based checkpoint;
 * - the job is killed with no retries left, so the run fails: `resume` starts a new run whose
 *   step continues from that checkpoint of the old run.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { initBackend } from '../../engine/backend.ts';
import { resumeRun, startRun } from '../../runtime/runs.ts';
import type { pipeline } from '../../workflows/pipeline.ts';
import { trainPolicy } from '../rl/fixture.ts';
import { tempDir } from '../train/helpers.ts';
import { makePlan, spawnWorker, startTestServer, startWorker, waitFor, type StepInput } from './helpers.ts';
import { pidsWithCommandLine } from '../helpers/job-process.ts';

const ITERATIONS = 5;
let fx: { policy: string; verifiable: string };
before(async () => {
  await initBackend();
  fx = await trainPolicy(tempDir('rl-durability'));
});

function grpoStep(queue: string, maximumAttempts: number): StepInput {
  return {
    id: 'grpo', uses: 'rl.grpo', queue,
    with: {
      policy: fx.policy, data: fx.verifiable, verifier: { type: 'rule' }, num_generations: 4, temperature: 1.0, response_length: 40,
      max_prompt_len: 64, learning_rate: 3e-3, kl_coef: 0.03, iterations: ITERATIONS, prompts_per_iteration: 4, mini_batch_size: 8, seed: 1,
      save_every: 1000, save_every_minutes: 0.0001,
    },
    outputs: ['checkpoint', 'metrics'],
    retry: { maximumAttempts, initialIntervalMs: 200, backoffCoefficient: 1, maximumIntervalMs: 200 },
    timeouts: { stepMs: 300_000, attemptMs: 240_000, heartbeatMs: 10_000, graceMs: 10_000 },
  };
}

/** Iterations of the complete checkpoints in a step folder. */
const checkpointsIn = (stepDir: string): number[] => {
  const root = join(stepDir, 'checkpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((n) => /^step-\d+$/.test(n)).map((n) => Number(n.slice(5)));
};

/** Pids of the job processes running the spec of a step folder. */
/** The processes of a step's job (their command line names its spec). */
const jobPids = (stepDir: string): number[] => pidsWithCommandLine(join(stepDir, '.job-spec.json'));

test('RL with time-based checkpoints survives kill -9 on a real dev server', async (t) => {
  const s = await startTestServer(t);

  await t.test('kill -9 of the worker: the retry resumes from the time-based checkpoint', async () => {
    const queue = 'rl-q';
    const first = spawnWorker(s, queue);
    const h = await startRun(s.client, makePlan('rl-worker-killed', [grpoStep(queue, 3)]));
    const stepDir = s.store.stepPath(h.workflowId, 'grpo');
    await waitFor('a time-based checkpoint', () => checkpointsIn(stepDir).length > 0 || undefined, 120_000);
    first.kill('SIGKILL');
    await first;
    await waitFor('the orphaned job to die', () => jobPids(stepDir).length === 0 || undefined, 10_000);
    const saved = Math.max(...checkpointsIn(stepDir));
    assert.ok(saved < ITERATIONS);

    const second = spawnWorker(s, queue);
    t.after(async () => {
      second.kill('SIGTERM');
      await second;
    });
    const r = await h.result();
    assert.equal(r.steps.grpo.state, 'succeeded');
    const log = readFileSync(join(stepDir, 'step.log'), 'utf8');
    const resumedAt = /resuming at iteration (\d+) of 5/.exec(log);
    assert.ok(resumedAt, `the second attempt started over:\n${log.slice(-2000)}`);
    assert.ok(Number(resumedAt[1]) >= saved, `resumed at ${resumedAt[1]}, a checkpoint at ${saved} existed`);
    const iterations = readFileSync(r.steps.grpo.outputs?.metrics as string, 'utf8').trim().split('\n').map((l) => JSON.parse(l).iteration);
    assert.deepEqual(iterations, [1, 2, 3, 4, 5]);
    second.kill('SIGTERM');
    await second;
  });

  await t.test('kill -9 of the job, no retries left: resume continues from the failed run\'s checkpoint', async () => {
    await startWorker(t, s);
    const h = await startRun(s.client, makePlan('rl-job-killed', [grpoStep('cpu', 1)]));
    const oldDir = s.store.stepPath(h.workflowId, 'grpo');
    await waitFor('a time-based checkpoint', () => checkpointsIn(oldDir).length > 0 || undefined, 120_000);
    const pids = jobPids(oldDir);
    assert.ok(pids.length > 0, 'the job is running');
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await assert.rejects(h.result(), WorkflowFailedError);
    const saved = Math.max(...checkpointsIn(oldDir));
    assert.ok(saved >= 1 && saved < ITERATIONS);

    const again = await resumeRun(s.client, h.workflowId, true);
    const r = await s.client.workflow.getHandle<typeof pipeline>(again.id).result();
    assert.equal(r.steps.grpo.state, 'succeeded');
    const log = readFileSync(join(s.store.stepPath(again.id, 'grpo'), 'step.log'), 'utf8');
    const name = `step-${String(saved).padStart(6, '0')}`;
    assert.match(log, new RegExp(`continuing step "grpo" of run ${h.workflowId} from its newest valid checkpoint \\S+/${name}`));
    assert.match(log, new RegExp(`resuming at iteration ${saved} of 5`));
    const iterations = readFileSync(r.steps.grpo.outputs?.metrics as string, 'utf8').trim().split('\n').map((l) => JSON.parse(l).iteration);
    assert.deepEqual(iterations, [1, 2, 3, 4, 5], 'the history of the old run carried on');
  });
});
