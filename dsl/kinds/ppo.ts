import { z } from 'zod';
import { FilePath } from './common.ts';
import { RlShared, RlTrailing } from './rl.ts';
import { BUILTIN_DEFAULTS } from '../schema.ts';
import { builtinJob, type StepKind } from './types.ts';
import { Accelerate, refusesAccelerate, refusesForRl, trlRunner } from './trl.ts';

export const PpoParams = z.strictObject({
  policy: RlShared.policy,
  value_model: FilePath.optional().describe('Checkpoint folder the value model starts from (the policy when absent).'),
  data: RlShared.data,
  verifier: RlShared.verifier,
  kl_coef: z.number().min(0).default(0.03).describe('Weight of the KL penalty to the reference policy (recipe 0.03).'),
  gamma: z.number().min(0).max(1).default(1.0).describe('Discount factor.'),
  lam: z.number().min(0).max(1).default(0.95).describe('GAE lambda.'),
  clip_range: z.number().positive().default(0.2).describe('Policy ratio clipping.'),
  clip_range_value: z.number().positive().default(0.2).describe('Value function clipping.'),
  vf_coef: z.number().min(0).default(0.1).describe('Weight of the value loss.'),
  temperature: RlShared.temperature,
  top_p: RlShared.top_p,
  response_length: RlShared.response_length,
  num_ppo_epochs: z.number().int().positive().default(3).describe('Update passes over each batch of rollouts (recipe 3).'),
  learning_rate: RlShared.learning_rate,
  lr_scheduler_type: RlShared.lr_scheduler_type,
  warmup_ratio: RlShared.warmup_ratio,
  iterations: RlShared.iterations,
  batch_size: z.number().int().positive().default(64).describe('Prompts per iteration (rollout batch).'),
  mini_batch_size: z.number().int().positive().default(8).describe('Responses per optimizer step.'),
  max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping by global norm (policy and value model each).'),
  ...RlTrailing,
  accelerate: Accelerate,
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
  runners: { ...builtinJob('jobs/rl.ppo.ts', refusesAccelerate), ...trlRunner(refusesForRl) },
};
