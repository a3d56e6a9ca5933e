/**
 * Scoring multiple-choice answers. Two scorers, by name (SCORERS):
 *
 *   huatuo  HuatuoGPT-o1's own extraction and accounting, exactly (evaluation/huatuo-scorer.ts):
 *           accuracies comparable with the paper's. The default.
 *   rules   the rules below, stricter about prose ("A patient", "B-cell") and option texts.
 *
 * The `rules` scorer reads the chosen letter from the text after the LAST `## Final Response`
 * heading (the whole text when there is none) by an ordered list of rules; the first rule
 * that finds anything decides, and both its first and its last match (by position) are kept,
 * so accuracy can be reported under either policy.
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
import { huatuoCorrect, huatuoExtract, type HuatuoRule } from './huatuo-scorer.ts';

export type RuleName = 'answer-phrase' | 'parenthesized' | 'lone-letter' | 'option-text' | 'similarity';

export interface Extraction {
  /** Letter of the earliest match of the deciding rule, or null when nothing was found. */
  first: string | null;
  /** Letter of the latest match of the deciding rule. */
  last: string | null;
  rule: RuleName | HuatuoRule | null;
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

/**
 * How answers are scored: `first` / `last` the first or the last extracted answer of every
 * item; `max` the better of the two per source (HuatuoGPT-o1 reports this).
 */
export type Policy = 'first' | 'last' | 'max';
export const POLICIES: readonly Policy[] = ['max', 'last', 'first'];

export type ScorerName = 'huatuo' | 'rules';
export const SCORER_NAMES: readonly ScorerName[] = ['huatuo', 'rules'];
export const DEFAULT_SCORER: ScorerName = 'huatuo';

export interface Scorer {
  name: ScorerName;
  extract(output: string, options: Record<string, string>): Extraction;
  /** Whether an extracted letter is the item's gold letter. */
  correct(letter: string | null, answerIdx: string): boolean;
  /** Items whose output is empty are left out of the accuracies (and counted apart). */
  dropsEmpty: boolean;
  /** The policy of the headline accuracy unless one is asked for. */
  policy: Policy;
}

export const SCORERS: Record<ScorerName, Scorer> = {
  huatuo: { name: 'huatuo', extract: huatuoExtract, correct: huatuoCorrect, dropsEmpty: true, policy: 'max' },
  rules: {
    name: 'rules',
    extract: extractChoice,
    correct: (letter, answerIdx) => letter !== null && letter === answerIdx.trim().toUpperCase(),
    dropsEmpty: false,
    policy: 'last',
  },
};

/** The scorer of that name, or an error listing the names. */
export function scorerByName(name: string): Scorer {
  if (!(SCORER_NAMES as readonly string[]).includes(name)) throw new Error(`unknown scorer "${name}": expected one of ${SCORER_NAMES.join(', ')}`);
  return SCORERS[name as ScorerName];
}

export function scoreResponse(
  response: string,
  item: { options: Record<string, string>; answer_idx: string },
  scorer: Scorer = SCORERS.rules,
): ScoredItem {
  const ex = scorer.extract(response, item.options);
  const gold = item.answer_idx.trim().toUpperCase();
  return { ...ex, gold, correct_first: scorer.correct(ex.first, item.answer_idx), correct_last: scorer.correct(ex.last, item.answer_idx) };
}

export interface SourceAccuracy {
  /**
   * Every item of the source, failed ones included, less the empty outputs the scorer drops
   * (`dropped_empty`): the denominator of the accuracies.
   */
  n: number;
  /** Items the server answered (n less failed). */
  answered: number;
  /** Items recorded as failed (results.jsonl `error`): not answered, so never correct. */
  failed: number;
  /** Of the failed, those whose prompt does not fit the model's context. */
  prompt_too_long: number;
  /** Answered items whose output was empty, left out of n by a scorer that drops them (huatuo), as HuatuoGPT-o1 does. */
  dropped_empty: number;
  correct_first: number;
  correct_last: number;
  accuracy_first: number;
  accuracy_last: number;
  /** Under the chosen policy, over n (max: the larger of accuracy_first and accuracy_last). */
  accuracy: number;
  /** Under the chosen policy, over the answered items only (0 when none was answered). */
  accuracy_answered: number;
}

/** What the accuracies divide by, as report.json states it. */
export const DENOMINATOR = 'all items: a failed item (prompt too long, request rejected) counts as not answered';
/** The same, for a scorer that drops empty outputs. */
export const DENOMINATOR_DROPPING_EMPTY = `${DENOMINATOR}; items whose output is empty are left out (dropped_empty), as HuatuoGPT-o1 does`;

export interface AccuracySummary {
  policy: Policy;
  /** The scorer's name (absent in reports written before scorers had names: the rules). */
  scorer?: ScorerName;
  /** See DENOMINATOR; accuracy_answered leaves failed items out. */
  denominator: string;
  sources: Record<string, SourceAccuracy>;
  /** Mean of the per-source accuracies (each source counts once), under the chosen policy. */
  average: number;
  average_first: number;
  average_last: number;
  /** Over all items pooled (max: each source's better policy). */
  overall: number;
  n: number;
  failed: number;
  prompt_too_long: number;
  dropped_empty: number;
}

/** The rows summarize reads: a row with `error` failed; `output` is needed to drop empty ones. */
export interface ScoredRow {
  source: string;
  correct_first: boolean;
  correct_last: boolean;
  error?: string;
  output?: string;
}

/**
 * Accuracy per source and their average; sources keep first-seen order. `dropEmpty`: answered
 * rows with an empty output are not counted (the huatuo scorer's accounting).
 */
export function summarize(rows: Iterable<ScoredRow>, policy: Policy = 'last', opts: { dropEmpty?: boolean; scorer?: ScorerName } = {}): AccuracySummary {
  const sources: Record<string, SourceAccuracy> = {};
  let n = 0;
  let failed = 0;
  let tooLong = 0;
  let dropped = 0;
  for (const r of rows) {
    const s = (sources[r.source] ??= {
      n: 0, answered: 0, failed: 0, prompt_too_long: 0, dropped_empty: 0, correct_first: 0, correct_last: 0,
      accuracy_first: 0, accuracy_last: 0, accuracy: 0, accuracy_answered: 0,
    });
    if (opts.dropEmpty && !r.error && r.output === '') {
      s.dropped_empty++;
      dropped++;
      continue;
    }
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
  }
  const list = Object.values(sources);
  const chosen = (s: SourceAccuracy) =>
    policy === 'first' ? s.correct_first : policy === 'last' ? s.correct_last : Math.max(s.correct_first, s.correct_last);
  for (const s of list) {
    s.accuracy_first = s.n ? s.correct_first / s.n : 0;
    s.accuracy_last = s.n ? s.correct_last / s.n : 0;
    s.accuracy = policy === 'first' ? s.accuracy_first : policy === 'last' ? s.accuracy_last : Math.max(s.accuracy_first, s.accuracy_last);
    s.accuracy_answered = s.answered ? chosen(s) / s.answered : 0;
  }
  // A source whose every output was dropped has nothing to average (HuatuoGPT-o1 never sees it).
  const counted = list.filter((s) => s.n > 0);
  const mean = (f: (s: SourceAccuracy) => number) => (counted.length ? counted.reduce((a, s) => a + f(s), 0) / counted.length : 0);
  const pooled = list.reduce((a, s) => a + chosen(s), 0);
  return {
    policy,
    ...(opts.scorer ? { scorer: opts.scorer } : {}),
    denominator: opts.dropEmpty ? DENOMINATOR_DROPPING_EMPTY : DENOMINATOR,
    sources,
    average: mean((s) => s.accuracy),
    average_first: mean((s) => s.accuracy_first),
    average_last: mean((s) => s.accuracy_last),
    overall: n ? pooled / n : 0,
    n,
    failed,
    prompt_too_long: tooLong,
    dropped_empty: dropped,
  };
}
