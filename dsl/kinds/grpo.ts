import { z } from 'zod';
import { FilePath, LrScheduler, RewardParam, RlWarmupRatio, Seed, Verifier } from './common.ts';
import { BUILTIN_DEFAULTS } from '../schema.ts';
import type { StepKind } from './types.ts';

export const GrpoParams = z.strictObject({
  policy: FilePath.describe('Checkpoint folder of the policy to train (usually the SFT output).'),
  data: FilePath.describe('Verifiable problems (JSON or JSONL).'),
  verifier: Verifier,
  num_generations: z.number().int().min(2).default(4).describe('Responses sampled per prompt; advantages are relative to the group.'),
  temperature: z.number().positive().default(0.5).describe('Sampling temperature of rollouts.'),
  top_p: z.number().gt(0).max(1).default(1.0).describe('Nucleus sampling of rollouts.'),
  response_length: z.number().int().positive().default(1300).describe('Max new tokens per response (recipe 1300).'),
  learning_rate: z.number().positive().default(5e-7).describe('Peak policy learning rate (recipe 5e-7).'),
  lr_scheduler_type: LrScheduler,
  warmup_ratio: RlWarmupRatio,
  kl_coef: z.number().min(0).default(0.03).describe('Weight of the KL penalty to the reference policy.'),
  kl_estimator: z.enum(['k1', 'k2', 'k3']).default('k3').describe('Per-token KL estimate in the loss: k1 = log ratio, k2 = half its square, k3 = exp(-r) + r - 1 (non-negative, low variance).'),
  clip_range: z.number().positive().default(0.2).describe('PPO-style ratio clipping.'),
  iterations: z.number().int().positive().default(100).describe('Rollout → score → update iterations.'),
  prompts_per_iteration: z.number().int().positive().default(32).describe('Prompts sampled per iteration.'),
  epochs_per_iteration: z.number().int().positive().default(1).describe('Update passes over each iteration\'s rollouts.'),
  mini_batch_size: z.number().int().positive().default(8).describe('Responses per optimizer step.'),
  max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping by global norm.'),
  max_prompt_len: z.number().int().positive().default(1024).describe('Longer prompts are truncated from the left.'),
  reward: RewardParam,
  seed: Seed,
  save_every: z.number().int().positive().default(10).describe('Iterations between checkpoints (or sooner: save_every_minutes).'),
  save_every_minutes: z.number().min(0).default(30).describe('Minutes of wall-clock time after which a checkpoint is written at the end of the current iteration, even before save_every iterations (0: by count only). A crash loses at most this much work (plus one iteration).'),
});
export type GrpoParams = z.infer<typeof GrpoParams>;

export const grpo: StepKind = {
  name: 'rl.grpo',
  description: 'Group-relative policy optimisation with the verifier reward (value-free RL).',
  params: GrpoParams,
  outputs: {
    checkpoint: 'Hugging Face model folder of the trained policy',
    metrics: 'per-iteration reward, KL and loss (JSONL)',
  },
  queue: 'gpu',
  grace: BUILTIN_DEFAULTS.gpuGrace,
  execution: 'job',
};
