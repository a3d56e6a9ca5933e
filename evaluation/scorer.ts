/**
 * Scoring multiple-choice answers. The chosen letter is read from the text after the
 * LAST `## Final Response` heading (the whole text when there is none) by an ordered
 * list of rules; the first rule that finds anything decides, and both its first and its
 * last match (by position) are kept, so accuracy can be reported under either policy.
 *
 *   1. answer-phrase   "The answer is B", "Answer: (c)", "correct option is **D**"
 *   2. parenthesized   "(B)"
 *   3. lone-letter     a valid option letter standing alone: "B", "C.", "**D**"
 *   4. option-text     the text of an option appears (longest wins where they overlap)
 *   5. similarity      the option whose text is most similar to the response
 *
 * Pure functions only.
 */
import { extractFinalResponse } from '../data/verifiers.ts';

export type RuleName = 'answer-phrase' | 'parenthesized' | 'lone-letter' | 'option-text' | 'similarity';

export interface Extraction {
  /** Letter of the earliest match of the deciding rule, or null when nothing was found. */
  first: string | null;
  /** Letter of the latest match of the deciding rule. */
  last: string | null;
  rule: RuleName | null;
}

interface Match {
  letter: string;
  index: number;
}

type Rule = (text: string, options: Record<string, string>) => Match[];

/** The part of a response the answer is read from: the same cut the verifiers judge. */
export const finalResponse = extractFinalResponse;

const ANSWER_PHRASE =
  /\b(?:answer|option|choice)(?:\s+(?:is|would be|should be|=))?\s*(?:option|choice)?\s*[:=]?\s*[*_"'`]*\s*([([])?\s*([A-Za-z])\s*([)\]])?(?![A-Za-z0-9])/gi;

const answerPhrase: Rule = (text, options) => {
  const out: Match[] = [];
  for (const m of text.matchAll(ANSWER_PHRASE)) {
    const [, open, raw, close] = m;
    const bracketed = Boolean(open || close);
    // A lowercase letter only counts when bracketed: "the answer is a rare..." is prose.
    if (raw !== raw.toUpperCase() && !bracketed) continue;
    // "option A is wrong", "choice" phrases without "answer" need a verb or a colon.
    const head = m[0].slice(0, 6).toLowerCase();
    if (head !== 'answer' && !/\b(is|would be|should be)\b|[:=]/i.test(m[0])) continue;
    const letter = raw.toUpperCase();
    if (letter in options) out.push({ letter, index: m.index! + m[0].lastIndexOf(raw) });
  }
  return out;
};

const parenthesized: Rule = (text, options) => {
  const out: Match[] = [];
  for (const m of text.matchAll(/\(([A-Z])\)/g)) if (m[1] in options) out.push({ letter: m[1], index: m.index! + 1 });
  return out;
};

const loneLetter: Rule = (text, options) => {
  const out: Match[] = [];
  for (const m of text.matchAll(/(?<![A-Za-z0-9'])([A-Z])(?![A-Za-z0-9'])/g)) {
    const letter = m[1];
    if (!(letter in options)) continue;
    const after = text.slice(m.index! + 1);
    // "A patient", "I think": the article and the pronoun, not option letters.
    if ((letter === 'A' || letter === 'I') && /^\s+[a-z0-9]/.test(after)) continue;
    // "A-fib", "B-cell": part of a hyphenated word.
    if (/^-[A-Za-z]/.test(after)) continue;
    out.push({ letter, index: m.index! });
  }
  return out;
};

function normalize(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim().replace(/[.;:,!]+$/, '').trim();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const optionText: Rule = (text, options) => {
  const hay = text.toLowerCase().replace(/\s+/g, ' ');
  const spans: { letter: string; index: number; end: number }[] = [];
  for (const [letter, raw] of Object.entries(options)) {
    const needle = normalize(raw);
    if (!needle) continue;
    const re = new RegExp(`(?<![a-z0-9])${escapeRegExp(needle)}(?![a-z0-9])`, 'g');
    for (const m of hay.matchAll(re)) spans.push({ letter, index: m.index!, end: m.index! + needle.length });
  }
  // Where spans overlap, the longer option text wins ("no" inside "no change in risk").
  spans.sort((a, b) => b.end - b.index - (a.end - a.index) || a.index - b.index);
  const kept: typeof spans = [];
  for (const s of spans) if (!kept.some((k) => s.index < k.end && k.index < s.end)) kept.push(s);
  return kept.map(({ letter, index }) => ({ letter, index }));
};

function bigrams(s: string): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + 1 < s.length; i++) {
    const g = s.slice(i, i + 2);
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Dice coefficient over character bigrams, in [0, 1]. */
export function similarity(a: string, b: string): number {
  const x = normalize(a);
  const y = normalize(b);
  if (x === y) return x ? 1 : 0;
  const bx = bigrams(x);
  const by = bigrams(y);
  let overlap = 0;
  for (const [g, n] of bx) overlap += Math.min(n, by.get(g) ?? 0);
  const total = Math.max(0, x.length - 1) + Math.max(0, y.length - 1);
  return total === 0 ? 0 : (2 * overlap) / total;
}

const nearestOption: Rule = (text, options) => {
  if (!normalize(text)) return [];
  let best: Match | null = null;
  let bestScore = 0;
  for (const letter of Object.keys(options).sort()) {
    const s = similarity(text, options[letter]);
    if (s > bestScore) {
      bestScore = s;
      best = { letter, index: 0 };
    }
  }
  return best ? [best] : [];
};

export const RULES: [RuleName, Rule][] = [
  ['answer-phrase', answerPhrase],
  ['parenthesized', parenthesized],
  ['lone-letter', loneLetter],
  ['option-text', optionText],
  ['similarity', nearestOption],
];

/** Extracts the chosen option letter from a model's response. */
export function extractChoice(response: string, options: Record<string, string>): Extraction {
  const text = finalResponse(response);
  for (const [rule, find] of RULES) {
    const matches = find(text, options);
    if (matches.length === 0) continue;
    matches.sort((a, b) => a.index - b.index);
    return { first: matches[0].letter, last: matches[matches.length - 1].letter, rule };
  }
  return { first: null, last: null, rule: null };
}

export interface ScoredItem extends Extraction {
  gold: string;
  correct_first: boolean;
  correct_last: boolean;
}

export function scoreResponse(response: string, item: { options: Record<string, string>; answer_idx: string }): ScoredItem {
  const ex = extractChoice(response, item.options);
  const gold = item.answer_idx.trim().toUpperCase();
  return { ...ex, gold, correct_first: ex.first === gold, correct_last: ex.last === gold };
}

export type Policy = 'first' | 'last';

export interface SourceAccuracy {
  /** Every item of the source, failed ones included: the denominator of the accuracies. */
  n: number;
  /** Items the server answered (n less failed). */
  answered: number;
  /** Items recorded as failed (results.jsonl `error`): not answered, so never correct. */
  failed: number;
  /** Of the failed, those whose prompt does not fit the model's context. */
  prompt_too_long: number;
  correct_first: number;
  correct_last: number;
  accuracy_first: number;
  accuracy_last: number;
  /** Under the chosen policy, over n. */
  accuracy: number;
  /** Under the chosen policy, over the answered items only (0 when none was answered). */
  accuracy_answered: number;
}

/** What the accuracies divide by, as report.json states it. */
export const DENOMINATOR = 'all items: a failed item (prompt too long, request rejected) counts as not answered';

export interface AccuracySummary {
  policy: Policy;
  /** See DENOMINATOR; accuracy_answered leaves failed items out. */
  denominator: string;
  sources: Record<string, SourceAccuracy>;
  /** Mean of the per-source accuracies (each source counts once), under the chosen policy. */
  average: number;
  average_first: number;
  average_last: number;
  /** Over all items pooled. */
  overall: number;
  n: number;
  failed: number;
  prompt_too_long: number;
}

/** Accuracy per source and their average; sources keep first-seen order. A row with `error` failed. */
export function summarize(
  rows: Iterable<{ source: string; correct_first: boolean; correct_last: boolean; error?: string }>,
  policy: Policy = 'last',
): AccuracySummary {
  const sources: Record<string, SourceAccuracy> = {};
  let n = 0;
  let pooled = 0;
  let failed = 0;
  let tooLong = 0;
  for (const r of rows) {
    const s = (sources[r.source] ??= {
      n: 0, answered: 0, failed: 0, prompt_too_long: 0, correct_first: 0, correct_last: 0,
      accuracy_first: 0, accuracy_last: 0, accuracy: 0, accuracy_answered: 0,
    });
    s.n++;
    n++;
    if (r.error) {
      s.failed++;
      failed++;
      if (r.error === 'prompt_too_long') {
        s.prompt_too_long++;
        tooLong++;
      }
      continue;
    }
    s.answered++;
    if (r.correct_first) s.correct_first++;
    if (r.correct_last) s.correct_last++;
    if (policy === 'first' ? r.correct_first : r.correct_last) pooled++;
  }
  const list = Object.values(sources);
  for (const s of list) {
    s.accuracy_first = s.correct_first / s.n;
    s.accuracy_last = s.correct_last / s.n;
    s.accuracy = policy === 'first' ? s.accuracy_first : s.accuracy_last;
    s.accuracy_answered = s.answered ? (policy === 'first' ? s.correct_first : s.correct_last) / s.answered : 0;
  }
  const mean = (f: (s: SourceAccuracy) => number) => (list.length ? list.reduce((a, s) => a + f(s), 0) / list.length : 0);
  return {
    policy,
    denominator: DENOMINATOR,
    sources,
    average: mean((s) => s.accuracy),
    average_first: mean((s) => s.accuracy_first),
    average_last: mean((s) => s.accuracy_last),
    overall: n ? pooled / n : 0,
    n,
    failed,
    prompt_too_long: tooLong,
  };
}
