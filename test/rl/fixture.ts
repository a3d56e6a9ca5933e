/**
 * A small policy for the RL tests: the tiny preset fine-tuned (by the real train.sft job)
 * on four short problems until it writes the "## Thinking / ## Final Response" layout, so
 * sampled answers are sometimes right, sometimes wrong and sometimes malformed.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run as runSft } from '../../jobs/train.sft.ts';
import { recordingContext } from '../data/job-ctx.ts';

const ORGANS = ['heart', 'lung', 'liver', 'kidney'];

export function writeProblems(dir: string): { sft: string; verifiable: string } {
  const sft = ORGANS.map((o, i) => ({
    Question: `Case ${i + 1}: which organ fails?`,
    Complex_CoT: `The signs of case ${i + 1} point to the ${o}.`,
    Response: `The ${o}.`,
  }));
  const verifiable = ORGANS.map((o, i) => ({ 'Open-ended Verifiable Question': `Case ${i + 1}: which organ fails?`, 'Ground-True Answer': o }));
  const paths = { sft: join(dir, 'sft.json'), verifiable: join(dir, 'verifiable.json') };
  writeFileSync(paths.sft, JSON.stringify(sft));
  writeFileSync(paths.verifiable, JSON.stringify(verifiable));
  return paths;
}

/** Trains the policy into dir/sft/checkpoint and returns its folder and the problems. */
export async function trainPolicy(dir: string): Promise<{ policy: string; verifiable: string }> {
  const data = writeProblems(dir);
  const ctx = recordingContext({
    model: 'preset:tiny', tokenizer_vocab_size: 300, data: data.sft, learning_rate: 0.005, epochs: 60, batch_size: 4,
    gradient_accumulation_steps: 1, max_seq_len: 128, warmup_ratio: 0.05, weight_decay: 0, save_every: 1000, seed: 5,
  }, join(dir, 'sft'));
  const r = await runSft(ctx);
  return { policy: r.checkpoint as string, verifiable: data.verifiable };
}
