/**
 * Training benchmark: the demo's SFT settings (tiny preset, 2048-token vocabulary,
 * max_seq_len 320, batch 8) on knowledge-base items for a few steps — tokens/s and seconds
 * per step — then GRPO iterations on the result — rollout and update seconds per iteration.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKb } from '../data/kb/generate.ts';
import { run as runSft } from '../jobs/train.sft.ts';
import { run as runGrpo } from '../jobs/rl.grpo.ts';
import type { JobContext } from '../contract/job.ts';
import { percentile } from './lib/stats.ts';

function context(params: Record<string, unknown>, outDir: string, metrics: Record<string, number>[]): JobContext {
  return {
    spec: { kind: 'bench', runId: 'bench', stepId: 'bench', params, outDir, attempt: 1 }, params, outDir, signal: new AbortController().signal,
    progress() {}, checkpoint() {}, artifact() {}, log() {},
    metric: (values) => metrics.push(values),
  };
}

// The upper of the two middle samples for an even count, as this benchmark has always reported.
const median = (xs: number[]) => percentile(xs, 0.5);

export async function run(): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-train-'));
  const kb = generateKb({ seed: 1, trainSize: 96, evalSize: 4, cotStyle: 'brief', specialties: ['cardiology'] });
  writeFileSync(join(dir, 'sft.json'), JSON.stringify(kb.sft));
  writeFileSync(join(dir, 'verifiable.json'), JSON.stringify(kb.verifiable));

  const sftMetrics: Record<string, number>[] = [];
  const t0 = performance.now();
  const sft = await runSft(context({
    model: 'preset:tiny', tokenizer_vocab_size: 2048, data: join(dir, 'sft.json'), learning_rate: 0.006, epochs: 1, batch_size: 8,
    gradient_accumulation_steps: 1, max_seq_len: 320, save_every: 1000, seed: 1,
  }, join(dir, 'sft'), sftMetrics));
  const sftSeconds = (performance.now() - t0) / 1000;

  const rlMetrics: Record<string, number>[] = [];
  await runGrpo(context({
    policy: sft.checkpoint, data: join(dir, 'verifiable.json'), verifier: { type: 'rule' }, num_generations: 4, temperature: 0.7,
    response_length: 160, max_prompt_len: 160, learning_rate: 2e-4, iterations: 3, prompts_per_iteration: 8, mini_batch_size: 8, save_every: 1000, seed: 1,
  }, join(dir, 'grpo'), rlMetrics));

  return {
    sft: {
      steps: sftMetrics.length,
      seconds: +sftSeconds.toFixed(1),
      medianTokensPerSec: Math.round(median(sftMetrics.map((m) => m.tokens_per_s))),
      loss: { first: +sftMetrics[0].loss.toFixed(3), last: +sftMetrics.at(-1)!.loss.toFixed(3) },
    },
    grpo: {
      responsesPerIteration: rlMetrics[0].responses,
      rolloutSeconds: rlMetrics.map((m) => +m.rollout_s.toFixed(2)),
      updateSeconds: rlMetrics.map((m) => +m.update_s.toFixed(2)),
      meanResponseTokens: rlMetrics.map((m) => +m.response_length.toFixed(1)),
    },
  };
}
