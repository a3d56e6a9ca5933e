/** rl.grpo: group-relative policy optimisation with the verifier reward (rl/loop.ts drives, rl/grpo.ts updates). */
import { grpoKnobs, GrpoParams } from '../dsl/kinds/grpo.ts';
import { grpoAdvantages } from '../rl/advantages.ts';
import { broadcast } from '../rl/batch.ts';
import { grpoUpdate } from '../rl/grpo.ts';
import { runRl, withoutSaveSettings, type Algorithm } from '../rl/loop.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

/**
 * What identifies the run's shape for resuming (rl/loop.ts): with loss_type dapo, group
 * scaling and symmetric clipping, the settings the step had before those knobs existed, under
 * their earlier names, so checkpoints written then still resume.
 */
export function grpoShape(p: GrpoParams): unknown {
  const { clip_range: _c, kl_coef: _k, epochs_per_iteration: _e, epsilon: _lo, epsilon_high: _hi, beta: _b, num_iterations: _n, loss_type, scale_rewards: _s, ...rest } = withoutSaveSettings(p);
  const k = grpoKnobs(p);
  if (loss_type === 'dapo' && k.scale_rewards === 'group' && k.epsilon_high === k.epsilon) {
    return { ...rest, clip_range: k.epsilon, kl_coef: k.beta, epochs_per_iteration: k.num_iterations };
  }
  return { ...rest, ...k, loss_type };
}

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(GrpoParams, ctx.params, 'rl.grpo');
  const k = grpoKnobs(p);
  const algo: Algorithm = {
    kind: 'rl.grpo',
    promptsPerIteration: p.prompts_per_iteration,
    numGenerations: p.num_generations,
    async init() {},
    update({ lr, temperature, policy, optimizer, rollout, scores, seq, oldLogp, refLogp, rng }) {
      const adv = grpoAdvantages(scores.rewards, rollout.group, { scale: k.scale_rewards });
      return { ...grpoUpdate(policy, optimizer, { ...seq, advantages: broadcast(adv, seq.mask), oldLogp, refLogp }, {
        lr, temperature, clip: k.epsilon, clipHigh: k.epsilon_high, klCoef: k.beta, kl: p.kl_estimator, lossType: p.loss_type,
        maxCompletionLength: p.response_length, epochs: k.num_iterations, miniBatchSize: p.mini_batch_size, maxGradNorm: p.max_grad_norm,
      }, rng) };
    },
    parts: () => [],
    dispose() {},
  };
  return runRl(ctx, p, algo, grpoShape(p));
}
