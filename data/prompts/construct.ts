/** Prompts of data.construct_verifiable: the optional filter and the rewrite of an MCQ into an open-ended question. */
import type { McqItem } from '../formats.ts';

export const FILTER_LABELS = ['pass', 'too simple', 'ambiguous answer', 'not reformulatable'] as const;
export type FilterLabel = (typeof FILTER_LABELS)[number];

function showMcq(item: McqItem): string {
  const options = Object.entries(item.options).map(([k, v]) => `${k}. ${v}`).join('\n');
  return `<question>\n${item.question}\n</question>\n\n<options>\n${options}\n</options>\n\n<correct option>\n${item.answer_idx}. ${item.answer}\n</correct option>`;
}

export function filterPrompt(item: McqItem): string {
  return [
    'You screen multiple-choice medical exam items. We want to turn each one into an open-ended question whose answer is short enough to be checked by matching it against a reference.',
    showMcq(item),
    [
      'Give the item exactly one label:',
      '- "pass": a good candidate; it needs real clinical reasoning and has one clear, short answer.',
      '- "too simple": it can be answered by recalling a single fact, with no reasoning.',
      '- "ambiguous answer": the keyed answer is debatable, or several options could be defended.',
      '- "not reformulatable": it only makes sense with its options (for example "all of the following EXCEPT", "which statement is true", "all of the above"), or its answer is too long to match.',
    ].join('\n'),
    'Reply with JSON only: {"label": "<one of the four labels>", "reason": "<one sentence>"}',
  ].join('\n\n');
}

export function rewritePrompt(item: McqItem): string {
  return [
    'Turn the multiple-choice medical exam item below into an open-ended question with a short reference answer.',
    showMcq(item),
    [
      'Rules:',
      '- Keep every clinical detail the answer depends on; drop the option list and any wording that points at it ("which of the following").',
      '- The question must have one correct answer, the one keyed above, and must not give it away.',
      '- The reference answer is short (a term or a few words, like the correct option text) so that it can be matched.',
    ].join('\n'),
    'Reply with JSON only: {"Open-ended Verifiable Question": "<the question>", "Ground-True Answer": "<the short answer>"}',
  ].join('\n\n');
}
