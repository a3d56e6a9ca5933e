/**
 * The knowledge base's shape. One condition is a small typed record: who gets it, what
 * it looks like, which tests tell it apart from its look-alikes, how it is treated and
 * why it happens. The first lab is the key test (the answer to "next best test").
 */
import { z } from 'zod';

export const SPECIALTIES = [
  'cardiology', 'pulmonology', 'gastroenterology', 'nephrology', 'endocrinology', 'hematology',
  'infectious_disease', 'neurology', 'rheumatology', 'dermatology', 'obstetrics_gynecology',
  'pediatrics', 'psychiatry', 'toxicology',
] as const;
export const Specialty = z.enum(SPECIALTIES);
export type Specialty = z.infer<typeof Specialty>;

const phrase = z.string().min(2).max(160).refine((s) => s === s.trim() && !/[.;]$/.test(s), {
  message: 'a short phrase: no surrounding spaces, no final period or semicolon',
});

/** A test and what it shows in this condition, e.g. ['serum lipase', 'more than three times normal']. */
export const Lab = z.tuple([phrase, phrase]);
export type Lab = z.infer<typeof Lab>;

/** A condition as written in data/kb/conditions/<specialty>.ts (the file supplies the specialty). */
export const ConditionEntry = z.object({
  name: phrase,
  /** Typical age band in years; bands ending below 2 are shown in months. */
  age: z.tuple([z.number().min(0), z.number().max(100)]).refine(([lo, hi]) => lo <= hi, { message: 'age band low > high' }),
  sex: z.enum(['female', 'male', 'any']),
  risks: z.array(phrase).min(1),
  /** Symptoms and signs; vignettes show a subset. */
  findings: z.array(phrase).min(5),
  labs: z.array(Lab).min(2),
  lookAlikes: z.array(phrase).min(2),
  treatment: phrase,
  mechanism: phrase,
}).strict();
export type ConditionEntry = z.infer<typeof ConditionEntry>;

export const Condition = ConditionEntry.extend({ specialty: Specialty });
export type Condition = z.infer<typeof Condition>;

/** Tags a specialty file's entries (type-checked at edit time, validated again at load time). */
export function specialty(name: Specialty, entries: ConditionEntry[]): Condition[] {
  return entries.map((e) => ({ ...e, specialty: name }));
}
