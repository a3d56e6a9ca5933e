import { z } from 'zod';
import { Temperature, TopP } from '../../evaluation/api.ts';
import { FilePath, Seed } from './common.ts';
import { builtinJob, type StepKind } from './types.ts';

export const EvalServer = z.strictObject({
  base_url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL').describe('Base URL of an SGLang / OpenAI-compatible server (…/v1).'),
  model: z.string().min(1).describe('Model name sent in each request.'),
  api_key_env: z.string().optional().describe('Environment variable holding the API key, if the server needs one.'),
  tokenizer: FilePath.optional().describe('The served model\'s folder (tokenizer_config.json or chat_template.jinja): its chat template renders the prompt for api: completions.'),
});

export const EvalSglangParams = z
  .strictObject({
    model: FilePath.optional().describe('Checkpoint folder to serve with the built-in SGLang-compatible server.'),
    server: EvalServer.optional().describe('An already running server to evaluate instead.'),
    data: FilePath.describe('Evaluation file: source name → MCQ items (JSON).'),
    prompt: z.enum(['default', 'strict']).default('default').describe('MCQ prompt, HuatuoGPT-o1\'s words; strict asks to end with "The answer is A."'),
    api: z.enum(['completions', 'chat']).default('completions').describe('completions: /v1/completions with the prompt rendered through the model\'s chat template, as HuatuoGPT-o1 asks (needs with.model, or with.server.tokenizer); chat: /v1/chat/completions, the server applies its template.'),
    scorer: z.enum(['huatuo', 'rules']).default('huatuo').describe('huatuo: HuatuoGPT-o1\'s scorer exactly (empty outputs dropped, per-source max of first and last answer); rules: stricter extraction rules.'),
    temperature: Temperature.default(0.5).describe('Sampling temperature (0 to 2, the served API\'s range).'),
    top_p: TopP.default(0.9).describe('Nucleus sampling.'),
    max_new_tokens: z.number().int().positive().default(2000).describe('Max tokens generated per answer (HuatuoGPT-o1: 2000).'),
    concurrency: z.number().int().positive().default(32).describe('Requests in flight at once.'),
    limit_per_source: z.number().int().min(0).optional().describe('Evaluate only the first N items of each source (0: every item).'),
    max_batch: z.number().int().positive().optional().describe('With model: sequences the built-in server decodes together (default: concurrency).'),
    replicas: z.union([z.literal('auto'), z.number().int().positive()]).optional().describe('With model: decode threads of the built-in server, each with a copy of the model; a thread past the first starts when every running one has 16 sequences. Default auto: one per core, up to 8, as memory allows.'),
    served_model_name: z.string().min(1).optional().describe('With model: the name the built-in server serves the checkpoint under, reported by /v1/models and in each answer (default: RUN/STEP of the step that wrote the checkpoint when it lies in the artifact store, else the folder name).'),
    history: z
      .string()
      .min(1)
      .optional()
      .describe('Earlier reports for the accuracy-over-time chart: a glob of report.json files, or "auto" for this step\'s reports in the earlier runs of the same schedule (runs started by hand: of the same pipeline) in the artifact store.'),
    policy: z.enum(['max', 'last', 'first']).optional().describe('Headline accuracy: max of the first and last extracted answers per source, the last, or the first (all are reported). Default: max for huatuo, last for rules.'),
    seed: Seed,
  })
  .superRefine((p, ctx) => {
    if ((p.model === undefined) === (p.server === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of with.model (a checkpoint to serve) or with.server (a running server)' });
    }
    if (p.served_model_name !== undefined && p.model === undefined) {
      ctx.addIssue({ code: 'custom', path: ['served_model_name'], message: 'served_model_name names the checkpoint the step serves (with.model); with with.server, set with.server.model instead' });
    }
    if (p.server && p.api === 'completions' && !p.server.tokenizer) {
      ctx.addIssue({ code: 'custom', path: ['server', 'tokenizer'], message: 'api: completions renders the prompt through the model\'s chat template: set with.server.tokenizer to the model\'s folder, or api: chat' });
    }
  });
export type EvalSglangParams = z.infer<typeof EvalSglangParams>;

export const evalSglang: StepKind = {
  name: 'eval.sglang',
  description: 'Answer the evaluation MCQs through an SGLang-compatible server and score accuracy per source.',
  params: EvalSglangParams,
  outputs: {
    report: 'HTML report with accuracy per source',
    accuracy: 'mean accuracy over sources (a number)',
    results: 'every item with the response and extracted letter (JSONL)',
  },
  queue: 'gpu',
  runners: builtinJob('jobs/eval.sglang.ts'),
};
