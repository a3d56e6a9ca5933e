/**
 * HuatuoGPT-o1's data formats, exactly as its files spell them (see samples/README.md).
 * Field names with spaces and the "Ground-True" spelling are the original ones.
 */
import { z } from 'zod';

/** A multiple-choice exam item (MedQA style). Options map a letter to its text. */
export const McqItem = z.object({
  question: z.string().min(1),
  options: z.record(z.string(), z.string()),
  answer_idx: z.string().min(1),
  answer: z.string(),
}).passthrough();
export type McqItem = z.infer<typeof McqItem>;

/** A verifiable problem: an open-ended question with a short, matchable answer. */
export const VerifiableItem = z.object({
  'Open-ended Verifiable Question': z.string().min(1),
  'Ground-True Answer': z.string().min(1),
}).passthrough();
export type VerifiableItem = z.infer<typeof VerifiableItem>;

/** A supervised fine-tuning item: the question, the thinking, the final response. */
export const SftItem = z.object({
  Question: z.string().min(1),
  Complex_CoT: z.string().min(1),
  Response: z.string().min(1),
}).passthrough();
export type SftItem = z.infer<typeof SftItem>;

/** An evaluation file: source name (e.g. "MedQA_USLME_test") → its MCQ items. */
export const EvalFile = z.record(z.string(), z.array(McqItem));
export type EvalFile = z.infer<typeof EvalFile>;

/** The SFT target text the model learns to produce (the recipe's exact layout). */
export function sftTarget(item: Pick<SftItem, 'Complex_CoT' | 'Response'>): string {
  return `## Thinking\n\n${item.Complex_CoT}\n\n## Final Response\n\n${item.Response}`;
}
