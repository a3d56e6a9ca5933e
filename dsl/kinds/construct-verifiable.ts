import { z } from 'zod';
import { FilePath, OnBadRecord, Teacher } from './common.ts';
import { builtinJob, type StepKind } from './types.ts';

export const ConstructVerifiableParams = z
  .strictObject({
    input: FilePath.describe('MCQ items (JSON or JSONL).'),
    method: z.enum(['llm', 'template']).default('llm').describe('Rewrite with the teacher model, or with deterministic templates (knowledge-base items).'),
    filter: z.boolean().default(true).describe('With method llm: drop items judged too simple, ambiguous or not reformulatable.'),
    teacher: Teacher.optional().describe('The model that filters and rewrites (required with method llm).'),
    on_bad_record: OnBadRecord,
    limit: z.number().int().positive().optional().describe('Process only the first N items.'),
  })
  .superRefine((p, ctx) => {
    if (p.method === 'llm' && p.teacher === undefined) {
      ctx.addIssue({ code: 'custom', path: ['teacher'], message: 'method llm needs a teacher model: add with.teacher {base_url, model}, or use method: template' });
    }
  });
export type ConstructVerifiableParams = z.infer<typeof ConstructVerifiableParams>;

export const constructVerifiable: StepKind = {
  name: 'data.construct_verifiable',
  description: 'Turn multiple-choice questions into open-ended verifiable problems with short matchable answers.',
  params: ConstructVerifiableParams,
  outputs: {
    verifiable: 'verifiable problems (JSON)',
    report: 'counts of kept, filtered and failed items (JSON)',
  },
  queue: 'cpu',
  runners: builtinJob('jobs/data.construct_verifiable.ts'),
};
