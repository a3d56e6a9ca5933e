import { z } from 'zod';
import { RlShared, RlTrailing } from './rl.ts';
import { BUILTIN_DEFAULTS } from '../schema.ts';
import { builtinJob, type StepKind } from './types.ts';

export const GrpoParams = z.strictObject({
  policy: RlShared.policy,
  data: RlShared.data,
  verifier: RlShared.verifier,
  num_generations: z.number().int().min(2).default(4).describe('Responses sampled per prompt; advantages are relative to the group.'),
  temperature: RlShared.temperature,
  top_p: RlShared.top_p,
  response_length: RlShared.response_length,
  learning_rate: RlShared.learning_rate,
  lr_scheduler_type: RlShared.lr_scheduler_type,
  warmup_ratio: RlShared.warmup_ratio,
  kl_coef: z.number().min(0).default(0.03).describe('Weight of the KL penalty to the reference policy.'),
  kl_estimator: z.enum(['k1', 'k2', 'k3']).default('k3').describe('Per-token KL estimate in the loss: k1 = log ratio, k2 = half its square, k3 = exp(-r) + r - 1 (non-negative, low variance).'),
  clip_range: z.number().positive().default(0.2).describe('PPO-style ratio clipping.'),
  iterations: RlShared.iterations,
  prompts_per_iteration: z.number().int().positive().default(32).describe('Prompts sampled per iteration.'),
  epochs_per_iteration: z.number().int().positive().default(1).describe('Update passes over each iteration\'s rollouts.'),
  mini_batch_size: z.number().int().positive().default(8).describe('Responses per optimizer step.'),
  max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping by global norm.'),
  ...RlTrailing,
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
  runners: builtinJob('jobs/rl.grpo.ts'),
};
