/**
 * The `trl` runner of train.sft, rl.grpo and rl.ppo: the same `with` run on Hugging Face TRL and
 * PyTorch (python/doctor_agent_trl, started by jobs/trl.ts). `accelerate:` (its process count and
 * an optional DeepSpeed config) belongs to this runner only; a parameter the runner cannot
 * honour is a compile error that says so.
 */
import { z } from 'zod';
import { FilePath } from './common.ts';
import type { RefusedParam, RefuseParams, Runner } from './types.ts';

export const TRL_RUNNER = 'trl';

export const Accelerate = z
  .strictObject({
    num_processes: z.number().int().positive().default(1).describe('Processes `accelerate launch` starts (one per GPU; on a CPU machine they train with gloo).'),
    deepspeed_config: FilePath.optional().describe('A DeepSpeed JSON config (e.g. ZeRO-3) handed to `accelerate launch --deepspeed_config_file`.'),
    config_file: FilePath.optional().describe('An accelerate config YAML (`accelerate launch --config_file`); its settings apply unless given here.'),
    mixed_precision: z.enum(['no', 'fp16', 'bf16']).optional().describe('`accelerate launch --mixed_precision` (default: bf16 on GPUs that support it, else none).'),
  })
  .optional()
  .describe('runner: trl only. How `accelerate launch` starts the TRL runner: processes, DeepSpeed, mixed precision.');

/** The built-in runner refuses `accelerate:` (it is the trl runner's). */
export const refusesAccelerate: RefuseParams = (given) =>
  given.accelerate === undefined ? [] : [{ path: ['accelerate'], message: 'belongs to runner: trl; the built-in runner trains in one process (remove it, or add runner: trl)' }];

/** Refuses each named parameter when given, with its reason. */
export function refuseGiven(reasons: Record<string, string>, extra?: RefuseParams): RefuseParams {
  return (given) => {
    const out: RefusedParam[] = [];
    for (const [name, why] of Object.entries(reasons)) {
      if (Object.hasOwn(given, name) && given[name] !== undefined) out.push({ path: [name], message: `runner: trl has no equivalent: ${why}` });
    }
    return [...out, ...(extra ? extra(given) : [])];
  };
}

/** The trl runner: the TypeScript job jobs/trl.ts, which prepares the data and starts Python. */
export function trlRunner(refuses?: RefuseParams): Record<string, Runner> {
  return {
    [TRL_RUNNER]: {
      type: 'builtin',
      module: 'jobs/trl.ts',
      description: 'Hugging Face TRL on PyTorch (python/doctor_agent_trl, under `accelerate launch`; `doctor-agent setup torch` installs it)',
      ...(refuses ? { refuses } : {}),
    },
  };
}

/** What the trl runner of both RL kinds refuses. */
export const refusesForRl: RefuseParams = refuseGiven(
  { rollout: 'the TRL runner samples rollouts with the policy it trains; an external rollout server is the built-in runner\'s (remove rollout:, or use runner: builtin)' },
  (given) => {
    const v = given.verifier as Record<string, unknown> | undefined;
    return v && typeof v === 'object' && v.type === 'model' && v.base_url !== undefined
      ? [{ path: ['verifier', 'base_url'], message: 'runner: trl runs the verifier model in-process: give verifier.model (a model folder) instead of base_url' }]
      : [];
  },
);
