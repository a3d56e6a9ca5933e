import { z } from 'zod';
import { FilePath, Seed } from './common.ts';
import type { StepKind } from './types.ts';

export const EvalServer = z.strictObject({
  base_url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL').describe('Base URL of an SGLang / OpenAI-compatible server (…/v1).'),
  model: z.string().min(1).describe('Model name sent in each request.'),
  api_key_env: z.string().optional().describe('Environment variable holding the API key, if the server needs one.'),
});

export const EvalSglangParams = z
  .strictObject({
    model: FilePath.optional().describe('Checkpoint folder to serve with the built-in SGLang-compatible server.'),
    server: EvalServer.optional().describe('An already running server to evaluate instead.'),
    data: FilePath.describe('Evaluation file: source name → MCQ items (JSON).'),
    prompt: z.enum(['default', 'strict']).default('default').describe('MCQ prompt; strict asks to end with "The answer is X."'),
    temperature: z.number().min(0).default(0.5).describe('Sampling temperature.'),
    top_p: z.number().gt(0).max(1).default(0.9).describe('Nucleus sampling.'),
    max_new_tokens: z.number().int().positive().default(2048).describe('Max tokens generated per answer.'),
    concurrency: z.number().int().positive().default(32).describe('Requests in flight at once.'),
    limit_per_source: z.number().int().min(0).optional().describe('Evaluate only the first N items of each source (0: every item).'),
    max_batch: z.number().int().positive().optional().describe('With model: sequences the built-in server decodes together (default: concurrency).'),
    history: z
      .string()
      .min(1)
      .optional()
      .describe('Earlier reports for the accuracy-over-time chart: a glob of report.json files, or "auto" for this step\'s reports in the earlier runs of the same schedule (runs started by hand: of the same pipeline) in the artifact store.'),
    policy: z.enum(['last', 'first']).default('last').describe('Which extracted answer is scored: the last match in the final response or the first (both are reported).'),
    seed: Seed,
  })
  .superRefine((p, ctx) => {
    if ((p.model === undefined) === (p.server === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of with.model (a checkpoint to serve) or with.server (a running server)' });
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
  execution: 'job',
};
