import { z } from 'zod';
import { FilePath, OnBadRecord, Seed, Teacher, Verifier } from './common.ts';
import { builtinJob, type StepKind } from './types.ts';

export const STRATEGIES = ['backtracking', 'exploring_new_paths', 'verification', 'correction'] as const;

export const SearchReasoningParams = z.strictObject({
  input: FilePath.describe('Verifiable problems (JSON or JSONL).'),
  teacher: Teacher.describe('The model that writes and extends the chains of thought.'),
  verifier: Verifier,
  max_depth: z.number().int().positive().default(3).describe('Strategy steps added to one chain before giving up on it.'),
  max_attempts: z.number().int().positive().default(3).describe('Fresh chains tried per problem.'),
  strategies: z.array(z.enum(STRATEGIES)).min(1).default([...STRATEGIES]).describe('Strategies drawn while the answer is wrong (backtracking never on the first step).'),
  seed: Seed,
  on_failure: z.enum(['drop', 'hint']).default('drop').describe('Problems never solved are dropped, or finished with a hint of the answer and marked.'),
  on_bad_record: OnBadRecord,
  limit: z.number().int().positive().optional().describe('Process only the first N problems.'),
}).superRefine((p, ctx) => {
  if (p.strategies.every((s) => s === 'backtracking')) {
    ctx.addIssue({ code: 'custom', path: ['strategies'], message: 'backtracking is never the first strategy of a chain: add at least one other (exploring_new_paths, verification, correction)' });
  }
});
export type SearchReasoningParams = z.infer<typeof SearchReasoningParams>;

export const searchReasoning: StepKind = {
  name: 'data.search_reasoning',
  description: 'Verifier-guided search for reasoning paths, rewritten into Complex_CoT + Response SFT items.',
  params: SearchReasoningParams,
  outputs: {
    sft: 'SFT items: Question, Complex_CoT, Response (JSON)',
    traces: 'full search traces, one per problem (JSONL)',
  },
  queue: 'cpu',
  runners: builtinJob('jobs/data.search_reasoning.ts'),
};
