import { z } from 'zod';
import { REWARD_SCALINGS, type RewardScaling } from '../../rl/advantages.ts';
import { LOSS_TYPES } from '../../rl/loss-types.ts';
import { RlShared, RlTrailing } from './rl.ts';
import { BUILTIN_DEFAULTS } from '../schema.ts';
import { builtinJob, type StepKind } from './types.ts';
import { Accelerate, refuseGiven, refusesAccelerate, refusesForRl, trlRunner } from './trl.ts';

/** Defaults of the knobs that have an earlier name (each taken from that name when it is given instead). */
export const GRPO_DEFAULTS = { epsilon: 0.2, beta: 0.03, num_iterations: 1 } as const;

/** TRL's name of a knob → its earlier name here, which is still accepted (never both). */
export const GRPO_ALIASES = { epsilon: 'clip_range', beta: 'kl_coef', num_iterations: 'epochs_per_iteration' } as const;

const Epsilon = z.number().positive();
const Beta = z.number().min(0);
const NumIterations = z.number().int().positive();

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
  loss_type: z.enum(LOSS_TYPES).default('dapo').describe('How the token losses of a mini-batch become its loss (TRL\'s loss_type): dapo, the mean over all its tokens (each token weighs the same); grpo, the mean over its responses of each response\'s token mean (each response weighs the same); dr_grpo, the sum over its tokens divided by its response count × response_length (Dr. GRPO). The KL term is reduced the same way.'),
  scale_rewards: z.union([z.enum(REWARD_SCALINGS), z.boolean()]).default('group').describe('What the group-centred rewards are divided by (TRL\'s scale_rewards): group, the group\'s standard deviation; batch, that of all the iteration\'s rewards; none, nothing (Dr. GRPO). true is group, false is none.'),
  beta: Beta.optional().meta({ default: GRPO_DEFAULTS.beta }).describe('Weight of the KL penalty to the reference policy (TRL\'s beta; 0: none).'),
  kl_coef: Beta.optional().describe('The earlier name of beta (give one of the two).'),
  kl_estimator: z.enum(['k1', 'k2', 'k3']).default('k3').describe('Per-token KL estimate in the loss, r = log pi(token) - log pi_ref(token): k1 = r, k2 = r²/2, k3 = exp(-r) + r - 1 (non-negative, low variance).'),
  epsilon: Epsilon.optional().meta({ default: GRPO_DEFAULTS.epsilon }).describe('Lower clip range of the probability ratio: it is kept at or above 1 - epsilon (TRL\'s epsilon).'),
  epsilon_high: Epsilon.optional().describe('Upper clip range: the ratio is kept at or below 1 + epsilon_high (TRL\'s epsilon_high; DAPO\'s clip-higher uses 0.28). Default: epsilon.'),
  clip_range: Epsilon.optional().describe('The earlier name of epsilon (give one of the two).'),
  iterations: RlShared.iterations,
  prompts_per_iteration: z.number().int().positive().default(32).describe('Prompts sampled per iteration.'),
  num_iterations: NumIterations.optional().meta({ default: GRPO_DEFAULTS.num_iterations }).describe('Update passes over each iteration\'s rollouts (TRL\'s num_iterations, the μ of the GRPO paper).'),
  epochs_per_iteration: NumIterations.optional().describe('The earlier name of num_iterations (give one of the two).'),
  mini_batch_size: z.number().int().positive().default(8).describe('Responses per optimizer step.'),
  max_grad_norm: z.number().positive().default(1.0).describe('Gradient clipping by global norm.'),
  ...RlTrailing,
  accelerate: Accelerate,
})
  .superRefine((p, ctx) => {
    for (const [name, earlier] of Object.entries(GRPO_ALIASES) as [keyof typeof GRPO_ALIASES, (typeof GRPO_ALIASES)[keyof typeof GRPO_ALIASES]][]) {
      if (p[name] !== undefined && p[earlier] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [earlier], message: `${earlier} is the earlier name of ${name}, which is also given: keep ${name} (TRL's name) and remove ${earlier}` });
      }
    }
  })
  // The earlier names give way to TRL's, the defaults are filled in and scale_rewards is a name,
  // so a compiled plan holds the values the step runs with.
  .overwrite((p) => {
    const { clip_range: _c, kl_coef: _k, epochs_per_iteration: _e, ...rest } = p;
    return { ...rest, ...grpoKnobs(p) };
  });
export type GrpoParams = z.infer<typeof GrpoParams>;

/** scale_rewards as a name: true is group, false is none (as TRL reads them). */
export function rewardScaling(v: RewardScaling | boolean): RewardScaling {
  return v === true ? 'group' : v === false ? 'none' : v;
}

type KnobNames = Partial<Record<keyof typeof GRPO_ALIASES | (typeof GRPO_ALIASES)[keyof typeof GRPO_ALIASES] | 'epsilon_high', number>> & { scale_rewards: RewardScaling | boolean };

/** The knobs a parsed rl.grpo step runs with, whichever names gave them. */
export function grpoKnobs(p: KnobNames): { epsilon: number; epsilon_high: number; beta: number; num_iterations: number; scale_rewards: RewardScaling } {
  const epsilon = p.epsilon ?? p.clip_range ?? GRPO_DEFAULTS.epsilon;
  return {
    epsilon,
    epsilon_high: p.epsilon_high ?? epsilon,
    beta: p.beta ?? p.kl_coef ?? GRPO_DEFAULTS.beta,
    num_iterations: p.num_iterations ?? p.epochs_per_iteration ?? GRPO_DEFAULTS.num_iterations,
    scale_rewards: rewardScaling(p.scale_rewards),
  };
}

/** TRL's GRPO estimates the KL with k3 only. */
const refusesForGrpoOnTrl = refuseGiven({}, (given) => [
  ...refusesForRl(given),
  ...(given.kl_estimator !== undefined && given.kl_estimator !== 'k3'
    ? [{ path: ['kl_estimator'], message: `runner: trl has no equivalent: TRL's GRPO estimates the KL with k3 only (remove kl_estimator, or give k3)` }]
    : []),
]);

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
  runners: { ...builtinJob('jobs/rl.grpo.ts', refusesAccelerate), ...trlRunner(refusesForGrpoOnTrl) },
};
