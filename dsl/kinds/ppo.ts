import { z } from 'zod';
import { FilePath, LrScheduler, RewardParam, RlWarmupRatio, Seed, Verifier } from './common.ts';
import { BUILTIN_DEFAULTS } from '../schema.ts';
import type { StepKind } from './types.ts';

export const PpoParams = z.strictObject({
  policy: FilePath.describe('Checkpoint folder of the policy to train (usually the SFT output).'),
  value_model: FilePath.optional().describe('Checkpoint folder the value model starts from (the policy when absent).'),
  data: FilePath.describe('Verifiable problems (JSON or JSONL).'),
  verifier: Verifier,
  kl_coef: z.number().min(0).default(0.03).describe('Weight of the KL penalty to the reference policy (recipe 0.03).'),
  gamma: z.number().min(0).max(1).default(1.0).describe('Discount factor.'),
  lam: z.number().min(0).max(1).default(0.95).describe('GAE lambda.'),
  clip_range: z.number().positive().default(0.2).describe('Policy ratio clipping.'),
  clip_range_value: z.number().positive().default(0.2).describe('Value function clipping.'),
  vf_coef: z.number().min(0).default(0.1).describe('Weight of the value loss.'),
  temperature: z.number().positive().default(0.5).describe('Sampling temperature of rollouts (recipe 0.5).'),
  top_p: z.number().gt(0).max(1).default(1.0).describe('Nucleus sampling of rollouts.'),
  response_length: z.number().int().positive().default(1300).describe('Max new tokens per response (recipe 1300).'),
  num_ppo_epochs: z.number().int().positive().default(3).describe('Update passes over each batch of rollouts (recipe 3).'),
  learning_rate: z.number().positive().default(5e-7).describe('Peak policy learning rate (recipe 5e-7).'),
  lr_scheduler_type: LrScheduler,
  warmup_ratio: RlWarmupRatio,
  iterations: z.number().int().positive().default(100).describe('Rollout → score → update iterations.'),
  batch_size: z.number().int().positive().default(64).describe('Prompts per iteration (rollout batch).'),
  mini_batch_size: z.number().int().positive().default(8).describe('Responses per optimizer step.'),
  max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping by global norm (policy and value model each).'),
  max_prompt_len: z.number().int().positive().default(1024).describe('Longer prompts are truncated from the left.'),
  reward: RewardParam,
  seed: Seed,
  save_every: z.number().int().positive().default(10).describe('Iterations between checkpoints (or sooner: save_every_minutes).'),
  save_every_minutes: z.number().min(0).default(30).describe('Minutes of wall-clock time after which a checkpoint is written at the end of the current iteration, even before save_every iterations (0: by count only). A crash loses at most this much work (plus one iteration).'),
});
export type PpoParams = z.infer<typeof PpoParams>;

export const ppo: StepKind = {
  name: 'rl.ppo',
  description: 'PPO with a value model and the verifier reward (the recipe\'s RL stage).',
  params: PpoParams,
  outputs: {
    checkpoint: 'Hugging Face model folder of the trained policy',
    metrics: 'per-iteration reward, KL, value and policy loss (JSONL)',
  },
  queue: 'gpu',
  grace: BUILTIN_DEFAULTS.gpuGrace,
  execution: 'job',
};
