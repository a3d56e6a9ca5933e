/**
 * Answer options of a multiple-choice item: the right answer plus four distractors
 * taken first from the condition's look-alikes, then from its specialty, then from
 * the rest of the knowledge base. Options are distinct (case-insensitively), and a
 * "test" question never offers another of the condition's own tests as a wrong answer.
 */
import type { Rng } from '../../common/rng.ts';
import { answerOf } from './cases.ts';
import type { Condition } from './schema.ts';
import type { QuestionType } from './templates.ts';

export const LETTERS = ['A', 'B', 'C', 'D', 'E'] as const;

export interface Options {
  options: Record<string, string>;
  answer_idx: string;
  answer: string;
  /** Conditions whose answers became the distractors, in option order (the answer's own slot excluded). */
  distractorSources: string[];
}

/** The items in random order, drawn lazily (a Fisher-Yates shuffle that stops when the caller does). */
function* randomOrder<T>(rng: Rng, items: readonly T[]): Generator<T> {
  const a = [...items];
  for (let i = 0; i < a.length; i++) {
    const j = i + rng.int(a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
    yield a[i];
  }
}

export function buildOptions(rng: Rng, c: Condition, type: QuestionType, kb: readonly Condition[], byName: ReadonlyMap<string, Condition>): Options {
  const answer = answerOf(c, type);
  const taken = new Set([answer.toLowerCase()]);
  if (type === 'test') for (const [t] of c.labs) taken.add(t.toLowerCase());
  const lookAlikes = c.lookAlikes.map((n) => byName.get(n)!);
  const sameSpecialty = kb.filter((o) => o.specialty === c.specialty && o !== c);
  const others = kb.filter((o) => o.specialty !== c.specialty);
  const picked: { text: string; from: string }[] = [];
  for (const group of [lookAlikes, sameSpecialty, others]) {
    for (const o of randomOrder(rng, group)) {
      if (picked.length === LETTERS.length - 1) break;
      const text = answerOf(o, type);
      if (taken.has(text.toLowerCase())) continue;
      taken.add(text.toLowerCase());
      picked.push({ text, from: o.name });
    }
  }
  if (picked.length < LETTERS.length - 1) throw new Error(`not enough distinct distractors for "${c.name}" (${type}); add conditions`);
  const slot = rng.int(LETTERS.length);
  const options: Record<string, string> = {};
  let j = 0;
  for (let i = 0; i < LETTERS.length; i++) options[LETTERS[i]] = i === slot ? answer : picked[j++].text;
  return { options, answer_idx: LETTERS[slot], answer, distractorSources: picked.map((p) => p.from) };
}
