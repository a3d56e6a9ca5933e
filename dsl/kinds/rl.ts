/**
 * The parameters rl.grpo and rl.ppo share: what the RL driver (rl/loop.ts runRl) takes. Each
 * RL kind's schema takes these fields from here; RlParams is their parsed type, held to
 * exactly the driver's options (RlOptions).
 */
import { z } from 'zod';
import type { RlOptions } from '../../rl/loop.ts';
import { FilePath, LrScheduler, RewardParam, RlWarmupRatio, Seed, Verifier } from './common.ts';
import { fits } from './types.ts';

export const RlShared = {
  policy: FilePath.describe('Checkpoint folder of the policy to train (usually the SFT output).'),
  data: FilePath.describe('Verifiable problems (JSON or JSONL).'),
  verifier: Verifier,
  temperature: z.number().positive().default(0.5).describe('Sampling temperature of rollouts (recipe 0.5).'),
  top_p: z.number().gt(0).max(1).default(1.0).describe('Nucleus sampling of rollouts.'),
  response_length: z.number().int().positive().default(1300).describe('Max new tokens per response (recipe 1300).'),
  learning_rate: z.number().positive().default(5e-7).describe('Peak policy learning rate (recipe 5e-7).'),
  lr_scheduler_type: LrScheduler,
  warmup_ratio: RlWarmupRatio,
  iterations: z.number().int().positive().default(100).describe('Rollout → score → update iterations.'),
  max_prompt_len: z.number().int().positive().default(1024).describe('Longer prompts are truncated from the left.'),
  reward: RewardParam,
  seed: Seed,
  save_every: z.number().int().positive().default(10).describe('Iterations between checkpoints (or sooner: save_every_minutes).'),
  save_every_minutes: z.number().min(0).default(30).describe('Minutes of wall-clock time after which a checkpoint is written at the end of the current iteration, even before save_every iterations (0: by count only). A crash loses at most this much work (plus one iteration).'),
};

export const RlParams = z.strictObject(RlShared);
export type RlParams = z.infer<typeof RlParams>;
fits<RlParams, RlOptions>(true);
