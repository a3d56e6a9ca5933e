import { z } from 'zod';
import { FilePath, Seed } from './common.ts';
import { BUILTIN_DEFAULTS } from '../schema.ts';
import { builtinJob, fits, type StepKind } from './types.ts';
import { Accelerate, refusesAccelerate, trlRunner } from './trl.ts';
import type { SftOptions } from '../../train/sft-loop.ts';

export const SftParams = z.strictObject({
  model: FilePath.describe('Hugging Face model folder to start from, or preset:tiny / preset:small for fresh weights of configs/<preset>.json.'),
  tokenizer: FilePath.optional().describe('tokenizer.json (or its folder); with a preset and none given, one is trained on the data.'),
  tokenizer_vocab_size: z.number().int().min(260).default(2048).describe('Vocabulary size of a tokenizer trained on the data.'),
  data: FilePath.describe('SFT items (Question, Complex_CoT, Response), JSON or JSONL.'),
  learning_rate: z.number().positive().default(5e-6).describe('Peak learning rate of AdamW (recipe 5e-6).'),
  epochs: z.number().int().positive().default(3).describe('Passes over the data.'),
  batch_size: z.number().int().positive().default(1).describe('Sequences per micro-batch.'),
  gradient_accumulation_steps: z.number().int().positive().default(16).describe('Micro-batches per optimizer step.'),
  max_seq_len: z.number().int().positive().default(4096).describe('Longer sequences are truncated (recipe 4096).'),
  warmup_ratio: z.number().min(0).max(1).default(0.05).describe('Share of steps with linear warmup before the cosine decay.'),
  weight_decay: z.number().min(0).default(0.1).describe('AdamW decoupled weight decay (not on norms and biases).'),
  max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping by global norm.'),
  save_every: z.number().int().positive().default(100).describe('Optimizer steps between checkpoints (or sooner: save_every_minutes).'),
  save_every_minutes: z.number().min(0).default(30).describe('Minutes of wall-clock time after which a checkpoint is written at the end of the current step, even before save_every steps (0: by count only). A crash loses at most this much work (plus one step).'),
  seed: Seed,
  accelerate: Accelerate,
});
export type SftParams = z.infer<typeof SftParams>;
fits<Omit<SftParams, 'accelerate'>, SftOptions>(true);

export const sft: StepKind = {
  name: 'train.sft',
  description: 'Supervised fine-tuning on the "## Thinking / ## Final Response" target, loss on the assistant turn only.',
  params: SftParams,
  outputs: { checkpoint: 'Hugging Face model folder of the trained model' },
  queue: 'gpu',
  grace: BUILTIN_DEFAULTS.gpuGrace,
  runners: { ...builtinJob('jobs/train.sft.ts', refusesAccelerate), ...trlRunner() },
};
