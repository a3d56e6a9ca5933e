/** Parameter blocks shared by several step kinds: the teacher model, the verifier, the reward mapping. */
import { z } from 'zod';
import { HUATUO_REWARD, HUATUO_VERIFIER_THRESHOLD } from '../../data/reward.ts';
import { LR_SCHEDULERS } from '../../engine/schedule.ts';

/** An http(s) URL, or empty. */
export const httpUrl = z
  .string()
  .refine((s) => s === '' || /^https?:\/\/\S+$/.test(s), { message: 'must be an http:// or https:// URL' });

/** An OpenAI-compatible chat API (GPT-4o in the recipe, or a local SGLang / vLLM server). */
export const Teacher = z
  .strictObject({
    base_url: httpUrl.default('https://api.openai.com/v1').describe('Base URL of an OpenAI-compatible API (…/v1).'),
    model: z.string().min(1).describe('Model name sent in each request, e.g. gpt-4o.'),
    api_key_env: z.string().default('OPENAI_API_KEY').describe('Environment variable holding the API key (never the key itself).'),
    concurrency: z.number().int().positive().default(8).describe('Requests in flight at once.'),
    max_retries: z.number().int().nonnegative().default(5).describe('Retries on 429, 5xx and timeouts, with backoff.'),
    timeout: z.number().positive().default(120).describe('Seconds before one request is abandoned and retried.'),
    temperature: z.number().min(0).max(2).optional().describe("Sampling temperature (the server's default when absent)."),
  })
  .describe('An OpenAI-compatible chat model.');
export type Teacher = z.infer<typeof Teacher>;

/** Judges a final answer against the reference: rule match, an LLM judge, or a verifier model. */
export const Verifier = z
  .discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('rule').describe('Normalised answer match with aliases and option letters.'),
      aliases: z.record(z.string(), z.array(z.string())).optional().describe('Extra accepted spellings per answer.'),
    }),
    z.strictObject({
      type: z.literal('llm').describe('An LLM judge answering True/False over the chat API.'),
      base_url: httpUrl.default('https://api.openai.com/v1').describe('Base URL of an OpenAI-compatible API.'),
      model: z.string().min(1).describe('Judge model name, e.g. gpt-4o.'),
      api_key_env: z.string().default('OPENAI_API_KEY').describe('Environment variable holding the API key.'),
      concurrency: z.number().int().positive().default(8).describe('Requests in flight at once.'),
      max_retries: z.number().int().nonnegative().default(5).describe('Retries on 429, 5xx and timeouts.'),
      timeout: z.number().positive().default(60).describe('Seconds per request.'),
    }),
    z.strictObject({
      type: z.literal('model').describe('A verifier model scoring P(True): a sequence classifier (HuatuoGPT-o1\'s medical_o1_verifier_3B), or a causal LM from the probabilities of "True" and "False" as its next token.'),
      model: z.string().min(1).optional().describe('Model folder of the verifier, scored by the built-in engine (give this or base_url): a Qwen2/LlamaForSequenceClassification folder (P(True) = label 1 of its head on HuatuoGPT-o1\'s verifier input, e.g. FreedomIntelligence/medical_o1_verifier_3B) or a causal LM checkpoint (P(True) from its next token after the judge prompt).'),
      base_url: httpUrl.optional().describe('Base URL of an OpenAI-compatible API serving the verifier model with logprobs (give this or model).'),
      served_model: z.string().min(1).optional().describe('With base_url: the name of the verifier model at that server.'),
      api_key_env: z.string().default('OPENAI_API_KEY').describe('With base_url: environment variable holding the API key.'),
      timeout: z.number().positive().default(60).describe('With base_url: seconds per request.'),
      threshold: z.number().min(0).max(1).default(HUATUO_VERIFIER_THRESHOLD).describe('P(True) above which (strictly) the answer counts as correct.'),
    }).superRefine((v, ctx) => {
      const ways = 'model (a checkpoint folder, scored in-process) or base_url (a server answering with logprobs)';
      if (v.model !== undefined && v.base_url !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['base_url'], message: `give one of ${ways}, not both` });
      } else if (v.model === undefined && v.base_url === undefined) {
        ctx.addIssue({ code: 'custom', path: [], message: `give one of ${ways}` });
      } else if (v.base_url !== undefined && v.served_model === undefined) {
        ctx.addIssue({ code: 'custom', path: ['base_url'], message: 'with base_url, name the verifier model at that server in served_model' });
      } else if (v.model !== undefined && v.served_model !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['served_model'], message: 'served_model goes with base_url; a checkpoint folder in model needs no name' });
      }
    }),
  ])
  .describe('How a final answer is judged against the reference answer.');
export type Verifier = z.infer<typeof Verifier>;

/** HuatuoGPT-o1's reward: correct 1.0, formatted but wrong 0.1, missing the format 0.0. */
export const Reward = z
  .strictObject({
    correct: z.number().default(HUATUO_REWARD.correct).describe('Reward for a correct final answer.'),
    wrong: z.number().default(HUATUO_REWARD.wrong).describe('Reward for a well-formatted but wrong answer.'),
    malformed: z.number().default(HUATUO_REWARD.malformed).describe('Reward when "## Thinking" and "## Final Response" followed by a blank line are not there exactly once.'),
  })
  .describe('Reward mapping of the verifier verdicts.');
export type Reward = z.infer<typeof Reward>;

/** The `reward` param of the RL kinds, defaulting to the recipe's mapping. */
export const RewardParam = Reward.default({ ...HUATUO_REWARD });

/** The RL kinds' learning-rate schedule over the iterations, as TRL's PPOTrainer runs HuatuoGPT-o1's RL stage. */
export const LrScheduler = z
  .enum(LR_SCHEDULERS)
  .default('linear')
  .describe('Learning-rate schedule over the iterations (transformers\' lr_scheduler_type, one step per iteration): linear = warmup then linear decay to 0 (the recipe), cosine, constant_with_warmup, constant (no warmup).');

export const RlWarmupRatio = z
  .number().min(0).max(1).default(0.05)
  .describe('Share of the iterations with linear warmup from 0 (rounded up; recipe 0.05). The first iteration runs at lr 0 when there is warmup, as in TRL.');

export const OnBadRecord = z
  .enum(['fail', 'skip'])
  .default('fail')
  .describe('A malformed input record fails the step (naming it), or is skipped and counted.');

export const Seed = z.number().int().nonnegative().default(0).describe('Seed of every random choice of the step.');

export const FilePath = z.string().min(1);
