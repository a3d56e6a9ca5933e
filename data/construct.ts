/**
 * Verifiable-problem construction: an MCQ item becomes an open-ended question with a
 * short, matchable ground-truth answer.
 *
 * - `llm`: optionally ask the teacher for a filter label (only "pass" continues), then
 *   ask it to rewrite the item.
 * - `template`: deterministic: drop the options, ask for the single best answer, and
 *   take the correct option's text as the ground truth. Items that only make sense with
 *   their options ("EXCEPT", "all of the above") are labelled not reformulatable.
 */
import { MalformedReplyError, type ChatClient, type ChatUsage } from './chat-client.ts';
import type { McqItem, VerifiableItem } from './formats.ts';
import { FILTER_LABELS, filterPrompt, rewritePrompt, type FilterLabel } from './prompts/construct.ts';

export type ConstructOutcome =
  | { status: 'kept'; label?: FilterLabel; item: McqItem & VerifiableItem }
  | { status: 'filtered'; label: FilterLabel; reason: string }
  | { status: 'failed'; label?: FilterLabel; error: string };

/** The `template` method. */
export function templateConstruct(item: McqItem): ConstructOutcome {
  const answer = item.options[item.answer_idx] ?? item.answer;
  if (needsOptions(item.question, answer)) {
    return { status: 'filtered', label: 'not reformulatable', reason: 'the question only makes sense with its options' };
  }
  const question = `${openQuestion(item.question)}\n\nGive the single best answer.`;
  return { status: 'kept', item: { ...item, 'Open-ended Verifiable Question': question, 'Ground-True Answer': answer.trim() } };
}

/** "Which of the following is X?" → "What is X?"; other "which of the following" wordings lose the reference to a list. */
export function openQuestion(question: string): string {
  return question
    .trim()
    .replace(/\bWhich of the following (is|are|was|were)\b/g, 'What $1')
    .replace(/\bwhich of the following (is|are|was|were)\b/g, 'what $1')
    .replace(/\bwhich of the following\s*([?.:]|$)/gi, (_m, end: string) => `what${end || '?'}`)
    .replace(/\b([Ww])hich of the following\s+/g, '$1hich ')
    .replace(/\b(of|from) the (options|choices) (below|given|listed)\b/gi, '')
    .replace(/[ \t]+([?.,])/g, '$1');
}

function needsOptions(question: string, answer: string): boolean {
  return /\b(EXCEPT|NOT true|NOT correct|LEAST likely|all of the above|none of the above)\b/.test(question)
    || /\b(all|each) of the following\b[\s\S]*\bexcept\b/i.test(question)
    || (question.match(/(^|\s)\(?[a-e]\)\s/gm) ?? []).length >= 3 // numbered statements the options combine
    || /^(all|none|both) of the (above|following)|^[a-e](\s*(,|and|&)?\s*[a-e])+$/i.test(answer.trim());
}

/** The `llm` method: filter (when asked), then rewrite. Chat failures propagate; malformed replies become `failed`. */
export async function llmConstruct(item: McqItem, client: ChatClient, opts: { filter: boolean; usage: ChatUsage; signal?: AbortSignal }): Promise<ConstructOutcome> {
  let label: FilterLabel | undefined;
  try {
    if (opts.filter) {
      const verdict = await client.chatJson(filterPrompt(item), checkLabel, { temperature: 0, usage: opts.usage, signal: opts.signal });
      label = verdict.label;
      if (label !== 'pass') return { status: 'filtered', label, reason: verdict.reason };
    }
    const rewritten = await client.chatJson(rewritePrompt(item), checkRewrite, { usage: opts.usage, signal: opts.signal });
    return { status: 'kept', label, item: { ...item, ...rewritten } };
  } catch (err) {
    if (!(err instanceof MalformedReplyError)) throw err;
    return { status: 'failed', label, error: (err as Error).message };
  }
}

function checkLabel(value: unknown): { label: FilterLabel; reason: string } {
  const v = value as { label?: unknown; reason?: unknown };
  const label = typeof v?.label === 'string' ? v.label.trim().toLowerCase().replace(/[_-]/g, ' ') : '';
  const found = FILTER_LABELS.find((l) => l === label);
  if (!found) throw new Error(`"label" must be one of ${FILTER_LABELS.map((l) => `"${l}"`).join(', ')}, got ${JSON.stringify(v?.label)}`);
  return { label: found, reason: typeof v.reason === 'string' ? v.reason : '' };
}

function checkRewrite(value: unknown): VerifiableItem {
  const v = value as Record<string, unknown>;
  const q = v?.['Open-ended Verifiable Question'];
  const a = v?.['Ground-True Answer'];
  if (typeof q !== 'string' || !q.trim()) throw new Error('missing "Open-ended Verifiable Question"');
  if (typeof a !== 'string' || !a.trim()) throw new Error('missing "Ground-True Answer"');
  return { 'Open-ended Verifiable Question': q.trim(), 'Ground-True Answer': a.trim() };
}
