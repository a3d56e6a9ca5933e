import { z } from 'zod';
import { Seed } from './common.ts';
import { builtinJob, type StepKind } from './types.ts';

export const KnowledgeBaseParams = z.strictObject({
  seed: Seed,
  train_size: z.number().int().positive().default(2000).describe('Training items generated (MCQ, verifiable and SFT alike).'),
  eval_size: z.number().int().positive().default(200).describe('Evaluation items per held-out source.'),
  cot_style: z.enum(['full', 'brief']).default('full').describe('Complex_CoT length: the full search-like reasoning, or a brief one for small models.'),
  specialties: z.array(z.string().min(1)).min(1).optional().describe('Restrict to these specialties (all when absent).'),
});
export type KnowledgeBaseParams = z.infer<typeof KnowledgeBaseParams>;

export const knowledgeBase: StepKind = {
  name: 'data.knowledge_base',
  description: 'Generate the built-in medical knowledge-base benchmark (MCQ, verifiable, SFT and held-out eval sets).',
  params: KnowledgeBaseParams,
  outputs: {
    mcq: 'MCQ items (JSON), MedQA style',
    verifiable: 'verifiable problems (JSON)',
    sft: 'SFT items with Complex_CoT and Response (JSON)',
    eval: 'evaluation file: held-out source name → MCQ items (JSON)',
  },
  queue: 'cpu',
  runners: builtinJob('jobs/data.knowledge_base.ts'),
};
