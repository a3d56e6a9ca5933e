/** rl.grpo: group-relative policy optimisation with the verifier reward (rl/loop.ts drives, rl/grpo.ts updates). */
import { GrpoParams } from '../dsl/kinds/grpo.ts';
import { grpoAdvantages } from '../rl/advantages.ts';
import { broadcast } from '../rl/batch.ts';
import { grpoUpdate } from '../rl/grpo.ts';
import { runRl, withoutSaveSettings, type Algorithm } from '../rl/loop.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(GrpoParams, ctx.params, 'rl.grpo');
  const algo: Algorithm = {
    kind: 'rl.grpo',
    promptsPerIteration: p.prompts_per_iteration,
    numGenerations: p.num_generations,
    async init() {},
    update({ lr, temperature, policy, optimizer, rollout, scores, seq, oldLogp, refLogp, rng }) {
      const adv = grpoAdvantages(scores.rewards, rollout.group);
      return { ...grpoUpdate(policy, optimizer, { ...seq, advantages: broadcast(adv, seq.mask), oldLogp, refLogp }, {
        lr, temperature, clip: p.clip_range, klCoef: p.kl_coef, kl: p.kl_estimator, epochs: p.epochs_per_iteration, miniBatchSize: p.mini_batch_size, maxGradNorm: p.max_grad_norm,
      }, rng) };
    },
    parts: () => [],
    dispose() {},
  };
  return runRl(ctx, p, algo, withoutSaveSettings(p));
}
