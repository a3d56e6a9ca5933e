/** rl.ppo: PPO with a value model and the verifier reward (rl/loop.ts drives, rl/ppo.ts updates). */
import { join } from 'node:path';
import { PpoParams } from '../dsl/kinds/ppo.ts';
import type { CausalLM } from '../engine/model.ts';
import { AdamW } from '../engine/optim.ts';
import { runRl, withoutSaveSettings, type Algorithm } from '../rl/loop.ts';
import { loadValueModel, ppoTargets, ppoUpdate, valuesOf } from '../rl/ppo.ts';
import { OPTIMIZER_FILE } from '../train/checkpoint.ts';
import { parseParams } from '../contract/params.ts';
import type { JobContext } from '../contract/job.ts';

const VALUE_DIR = 'value';

export async function run(ctx: JobContext): Promise<Record<string, unknown>> {
  const p = parseParams(PpoParams, ctx.params, 'rl.ppo');
  let vm: CausalLM | undefined;
  let vOpt: AdamW | undefined;
  const algo: Algorithm = {
    kind: 'rl.ppo',
    promptsPerIteration: p.batch_size,
    numGenerations: 1,
    async init(resumeDir) {
      vm = await loadValueModel(resumeDir ? join(resumeDir, VALUE_DIR) : (p.value_model ?? p.policy));
      vOpt = new AdamW(vm.params, { weightDecay: 0 });
      if (resumeDir) vOpt.load(join(resumeDir, VALUE_DIR, OPTIMIZER_FILE));
    },
    update({ lr, temperature, policy, optimizer, rollout, scores, seq, oldLogp, refLogp, rng }) {
      const oldValues = valuesOf(vm!, seq);
      const t = ppoTargets(seq, rollout.responses.map((r) => r.length), scores.rewards, oldLogp, refLogp, oldValues, { klCoef: p.kl_coef, gamma: p.gamma, lam: p.lam });
      const stats = ppoUpdate(policy, optimizer, vm!, vOpt!, { ...seq, advantages: t.advantages, returns: t.returns, oldLogp, oldValues }, {
        lr, temperature, clip: p.clip_range, clipValue: p.clip_range_value, vfCoef: p.vf_coef, epochs: p.num_ppo_epochs,
        miniBatchSize: p.mini_batch_size, maxGradNorm: p.max_grad_norm,
      }, rng);
      return { ...stats, kl: t.kl };
    },
    parts: () => [{ dir: VALUE_DIR, model: vm!, optimizer: vOpt! }],
    dispose() { vOpt?.dispose(); vm?.dispose(); },
  };
  return runRl(ctx, p, algo, withoutSaveSettings(p));
}
