/**
 * The `trl` runner through the real runtime, on a real Temporal dev server, with the TRL
 * runner's Python (PyTorch, TRL) on CPU and tiny models:
 * - `doctor-agent run` of the demo pipeline with SFT and GRPO on TRL, shrunk: the checkpoints
 *   TRL writes are loaded and run by the built-in engine, and the evaluation step scores them;
 * - kill -9 of the worker mid-SFT: a new worker's attempt resumes from TRL's checkpoint and ends
 *   with exactly the weights of the uninterrupted SFT of that pipeline run;
 * - SFT on 2 processes (accelerate launch, gloo on CPU);
 * - cancelling the run reaches the Python process group.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../engine/backend.ts';
import { loadModel } from '../../engine/checkpoint.ts';
import { generate } from '../../engine/generate.ts';
import { Tokenizer } from '../../engine/tokenizer.ts';
import { openSafetensors } from '../../engine/safetensors.ts';
import { startRun } from '../../runtime/runs.ts';
import { PROJECT_ROOT } from '../../common/python.ts';
import { tempDir } from '../train/helpers.ts';
import { cliFor, makePlan, spawnWorker, startTestServer, startWorker, waitFor, type StepInput } from '../temporal/helpers.ts';
import { requireTorchPython } from '../helpers/torch-python.ts';
import { pidsWithCommandLine } from '../helpers/job-process.ts';

before(async () => {
  await initBackend();
});

/** The SFT step of the pipeline run (its resolved `with`, its data file, its checkpoint): the later runs repeat it. */
let reference: { with: Record<string, unknown>; data: string; checkpoint: string };

/** Processes whose command line holds `needle` (the step's spec path). */
const trlCheckpoints = (stepDir: string): number[] => {
  const root = join(stepDir, 'checkpoints');
  return existsSync(root) ? readdirSync(root).filter((n) => /^checkpoint-\d+$/.test(n)).map((n) => Number(n.slice(11))) : [];
};

function sftStep(queue: string, extra: Record<string, unknown> = {}): StepInput {
  return {
    id: 'sft', uses: 'train.sft', runner: 'trl', queue,
    with: { ...reference.with, ...extra },
    outputs: ['checkpoint'],
    retry: { maximumAttempts: 3, initialIntervalMs: 200, backoffCoefficient: 1, maximumIntervalMs: 200 },
    timeouts: { stepMs: 900_000, attemptMs: 600_000, heartbeatMs: 20_000, graceMs: 10_000 },
  };
}

/** Every tensor of two safetensors files, exactly equal. */
function sameWeights(a: string, b: string): void {
  const x = openSafetensors(join(a, 'model.safetensors'));
  const y = openSafetensors(join(b, 'model.safetensors'));
  try {
    assert.deepEqual([...x.tensors.keys()].sort(), [...y.tensors.keys()].sort());
    for (const name of x.tensors.keys()) assert.deepEqual(x.read(name), y.read(name), `${name} differs`);
  } finally {
    x.close();
    y.close();
  }
}

test('the trl runner through the real runtime', { timeout: 1_500_000 }, async (t) => {
  if (!requireTorchPython(t)) return;
  const s = await startTestServer(t);
  const cli = cliFor(s);

  await t.test('doctor-agent run: SFT and GRPO on TRL leave checkpoints the built-in engine runs and evaluates', async () => {
    const dir = tempDir('trl-pipeline');
    const file = join(dir, 'trl-e2e.yaml');
    writeFileSync(file, `
extends: ${join(PROJECT_ROOT, 'pipelines', 'huatuo-tiny-trl.yaml')}
name: trl-e2e
steps:
  - id: sft
    with: { epochs: 3, save_every: 2, max_seq_len: 192 }
  - id: grpo
    with: { iterations: 2, prompts_per_iteration: 2, num_generations: 2, response_length: 16, mini_batch_size: 4, max_prompt_len: 128 }
  - id: eval
    with: { max_new_tokens: 16 }
  - { id: eval_sft, remove: true }
`);
    const r = await cli('run', file, '--set', 'train_size=32', '--set', 'eval_size=3');
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`.slice(-5000));
    const runDir = readdirSync(join(s.store.root, 'runs')).find((n) => n.startsWith('trl-e2e-'))!;
    const steps = join(s.store.root, 'runs', runDir, 'steps');
    for (const step of ['sft', 'grpo']) {
      const folder = join(steps, step, 'checkpoint');
      const { model } = await loadModel(folder);
      const tok = Tokenizer.load(folder);
      const prompt = tok.encodeChat([{ role: 'user', content: 'A 50-year-old man with chest pain. What is the most likely diagnosis?' }]);
      const out = generate(model, [prompt], { maxNewTokens: 8, temperature: 0, seed: 1 });
      assert.equal(out.tokens[0].length > 0, true, `${step}: the engine generates from TRL's checkpoint`);
      model.dispose();
    }
    // The parameters the SFT job ran with, every expression resolved.
    const sftWith = (JSON.parse(readFileSync(join(steps, 'sft', '.job-spec.json'), 'utf8')) as { params: Record<string, unknown> }).params;
    reference = { with: sftWith, data: sftWith.data as string, checkpoint: join(steps, 'sft', 'checkpoint') };
    const iterations = readFileSync(join(steps, 'grpo', 'iterations.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(iterations.map((it) => it.iteration), [1, 2]);
    const report = JSON.parse(readFileSync(join(steps, 'eval', 'report.json'), 'utf8')) as { model: string; counts: { items: number; asked: number; failed: number } };
    assert.match(report.model, /\/grpo$/, 'the evaluation served the checkpoint GRPO on TRL wrote');
    assert.ok(report.counts.asked > 0 && report.counts.failed === 0, `the evaluation scored every item: ${JSON.stringify(report.counts)}`);
  });

  await t.test('kill -9 of the worker mid-SFT: the retry resumes from TRL\'s checkpoint, to the same weights', async () => {
    const queue = 'trl-kill';
    const first = spawnWorker(s, queue);
    const h = await startRun(s.client, makePlan('trl-sft-killed', [sftStep(queue)]));
    const stepDir = s.store.stepPath(h.workflowId, 'sft');
    await waitFor('a TRL checkpoint', () => trlCheckpoints(stepDir).length > 0 || undefined, 600_000);
    first.kill('SIGKILL');
    await first;
    await waitFor('the orphaned runner to die', () => pidsWithCommandLine(join(stepDir, 'trl-job.json')).length === 0 || undefined, 30_000);
    const saved = Math.max(...trlCheckpoints(stepDir));
    const second = spawnWorker(s, queue);
    t.after(async () => {
      second.kill('SIGTERM');
      await second;
    });
    const r = await h.result();
    assert.equal(r.steps.sft.state, 'succeeded');
    const log = readFileSync(join(stepDir, 'step.log'), 'utf8');
    const resumed = /resuming from \S+\/checkpoint-(\d+)/.exec(log);
    assert.ok(resumed, `the second attempt started over:\n${log.slice(-3000)}`);
    assert.ok(Number(resumed[1]) >= saved, `resumed at ${resumed[1]}, a checkpoint at ${saved} existed`);
    sameWeights(r.steps.sft.outputs?.checkpoint as string, reference.checkpoint);
  });

  await t.test('SFT on 2 processes with accelerate launch (gloo on CPU)', async () => {
    await startWorker(t, s, ['trl']);
    const h = await startRun(s.client, makePlan('trl-sft-ddp', [sftStep('trl', { accelerate: { num_processes: 2 }, epochs: 1 })]));
    const r = await h.result();
    assert.equal(r.steps.sft.state, 'succeeded');
    const log = readFileSync(join(s.store.stepPath(h.workflowId, 'sft'), 'step.log'), 'utf8');
    assert.match(log, /accelerate\.commands\.launch --num_processes 2/);
    // Batches of batch_size on each of 2 processes: half the optimizer steps of one process over the same items.
    const items = (JSON.parse(readFileSync(reference.data, 'utf8')) as unknown[]).length;
    const batch = reference.with.batch_size as number;
    const progress = [...log.matchAll(/"type":"progress","current":(\d+),"total":(\d+)/g)].map((m) => Number(m[2]));
    assert.equal(progress.at(-1), Math.ceil(items / (2 * batch)), `both processes shared the ${items} items (one process: ${Math.ceil(items / batch)} steps)`);
    const { model } = await loadModel(r.steps.sft.outputs?.checkpoint as string);
    model.dispose();
  });

  await t.test('cancelling the run stops the Python processes', async () => {
    const h = await startRun(s.client, makePlan('trl-sft-cancel', [sftStep('trl', { epochs: 50 })]));
    const stepDir = s.store.stepPath(h.workflowId, 'sft');
    const spec = join(stepDir, 'trl-job.json');
    await waitFor('the Python runner', () => (pidsWithCommandLine(spec).length > 0 && /"type":"progress"/.test(readFileSync(join(stepDir, 'step.log'), 'utf8'))) || undefined, 300_000);
    const cancelled = await cli('cancel', h.workflowId);
    assert.equal(cancelled.exitCode, 0, cancelled.stderr);
    await waitFor('no Python process of the step', () => pidsWithCommandLine(spec).length === 0 || undefined, 60_000);
  });
});
