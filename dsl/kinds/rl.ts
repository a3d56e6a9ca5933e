/**
 * The parameters rl.grpo and rl.ppo share: what the RL driver (rl/loop.ts runRl) takes. Each
 * RL kind's schema takes these fields from here; RlParams is their parsed type, held to
 * exactly the driver's options (RlOptions).
 */
import { z } from 'zod';
import type { RlOptions } from '../../rl/loop.ts';
import { MAX_TEMPERATURE, Temperature } from '../../evaluation/api.ts';
import { FilePath, httpUrl, LrScheduler, RewardParam, RlWarmupRatio, Seed, Verifier } from './common.ts';
import { fits } from './types.ts';

/** `rollout:`: rollouts sampled by an OpenAI/SGLang-compatible server instead of the policy in-process. */
export const RolloutServer = z
  .strictObject({
    base_url: httpUrl.refine((s) => s !== '', { message: 'give the server\'s base URL, e.g. http://127.0.0.1:30000/v1' })
      .describe('Base URL of an OpenAI/SGLang-compatible API (…/v1) whose /v1/completions takes token-id prompts, n, seed and stop_token_ids and returns token ids (logprobs with return_tokens_as_token_ids: vLLM, the built-in server).'),
    model: z.string().min(1).describe('Model name sent in each request: the name the server serves the policy under.'),
    api_key_env: z.string().default('OPENAI_API_KEY').describe('Environment variable holding the API key (never the key itself; a local server may need none).'),
    weights: z.enum(['fixed', 'reloaded_from_checkpoints']).describe(
      'Required, because the trainer never sends its updated weights to the server. fixed: every iteration samples the server\'s own model, so rollouts after the first iteration are off-policy (for one iteration, or to sample a checkpoint for pass@k). reloaded_from_checkpoints: the server reloads the policy from this step\'s checkpoints by itself, so rollouts lag the trained policy by up to save_every iterations. A warning says which at the start of the step.',
    ),
    timeout: z.number().positive().default(3600).describe('Seconds per request (one request per iteration: its prompts × the generations).'),
    max_retries: z.number().int().nonnegative().default(3).describe('Retries on 429, 5xx, timeouts and network errors, with backoff (a retried request is the same seeded request).'),
  })
  .describe('Rollouts from an OpenAI/SGLang-compatible server (one /v1/completions request per iteration with the prompts\' token ids, n = the generations, the seed), mapped to exactly the rollout the policy in-process gives for the same seed and weights. Absent (the default): the policy samples in-process (a policy training on tensorflow, of up to 30M parameters, on a replica in a worker thread on wasm, the same generate() call; over 16 rows in slices, on up to one replica per core when the run samples 100,000 tokens or more: engine/README, Backend per workload; DOCTOR_AGENT_ROLLOUT_THREAD=0 samples on the policy itself).');

/** The fields each RL kind's schema ends with, in this order. */
export const RlTrailing = {
  max_prompt_len: z.number().int().positive().default(1024).describe('Longer prompts are truncated from the left.'),
  reward: RewardParam,
  seed: Seed,
  save_every: z.number().int().positive().default(10).describe('Iterations between checkpoints (or sooner: save_every_minutes).'),
  save_every_minutes: z.number().min(0).default(30).describe('Minutes of wall-clock time after which a checkpoint is written at the end of the current iteration, even before save_every iterations (0: by count only). A crash loses at most this much work (plus one iteration).'),
  rollout: RolloutServer.optional(),
};

export const RlShared = {
  policy: FilePath.describe('Checkpoint folder of the policy to train (usually the SFT output).'),
  data: FilePath.describe('Verifiable problems (JSON or JSONL).'),
  verifier: Verifier,
  // The served API's range (rollout: sends it to the server), above 0: every log-prob divides the logits by temperature + 1e-7.
  temperature: Temperature.gt(0).default(0.5).describe(`Sampling temperature of rollouts (recipe 0.5): above 0, at most ${MAX_TEMPERATURE} (the served API's range).`),
  top_p: z.number().gt(0).max(1).default(1.0).describe('Nucleus sampling of rollouts.'),
  response_length: z.number().int().positive().default(1300).describe('Max new tokens per response (recipe 1300).'),
  learning_rate: z.number().positive().default(5e-7).describe('Peak policy learning rate (recipe 5e-7).'),
  lr_scheduler_type: LrScheduler,
  warmup_ratio: RlWarmupRatio,
  iterations: z.number().int().positive().default(100).describe('Rollout → score → update iterations.'),
  ...RlTrailing,
};

export const RlParams = z.strictObject(RlShared);
export type RlParams = z.infer<typeof RlParams>;
fits<RlParams, RlOptions>(true);
