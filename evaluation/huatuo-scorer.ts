/**
 * The `huatuo` scorer: HuatuoGPT-o1's own letter extraction (evaluation/scorer.py of the
 * paper's code), reproduced rule for rule so that accuracies compare with the paper's.
 *
 * The text is what follows the last "## Final Response\n\n" (the whole output when there is
 * none). The first rule that finds anything decides; its first and its last find are kept.
 *
 *   1. answer-is     "answer is" then lazily any whitespace, then one of A–N (case-sensitive)
 *   2. lone-letter   one of the first k letters of A–N (k = the number of options), right after
 *                    the start, a non-word character, a CJK ideograph, "is ", 是, 项 or 为, and
 *                    right before a non-word character, a CJK ideograph or the end; never an
 *                    "A" followed by a space (the article)
 *   3. option-text   option texts found in the lowercased text: last = the option whose last
 *                    occurrence is latest, first = the option whose FIRST occurrence is latest
 *                    (sic); ties go to the earlier option in the item's order
 *   4. similarity    difflib's SequenceMatcher ratio between each lowercased option text and
 *                    the text (autojunk on); the highest wins, ties to the later option
 *
 * Python's regular expressions on str are Unicode-aware: `\w` is a character for which
 * str.isalnum() holds, or "_", which is exactly the letters (L*) and numbers (N*) of Unicode;
 * marks (M*) are not word characters. JavaScript's `\w` is ASCII only, so the classes are
 * spelled out with Unicode properties here. Python's `\s` is Python's str.isspace(), which
 * differs from JavaScript's `\s` (U+001C–U+001F and U+0085 are spaces to Python, U+FEFF is
 * not). Characters assigned in a later Unicode version than the Python's are word characters
 * here and not there: the only known disagreement (see bench/scorer-agreement.ts).
 */
import difflib from 'difflib';

export type HuatuoRule = 'answer-is' | 'lone-letter' | 'option-text' | 'similarity';

export interface HuatuoExtraction {
  first: string | null;
  last: string | null;
  rule: HuatuoRule | null;
}

/** The heading HuatuoGPT-o1's outputs put before the answer, with the blank line after it. */
export const FINAL_RESPONSE_CUT = '## Final Response\n\n';

/** Python's `\W` for str patterns: not a Unicode letter, not a Unicode number, not "_". */
const NON_WORD = String.raw`[^\p{L}\p{N}_]`;
/** Python's `\s` for str patterns (str.isspace()). */
const PY_SPACE = String.raw`[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
const CJK = String.raw`[\u4e00-\u9fff]`;
const LETTERS = 'ABCDEFGHIJKLMN';

const ANSWER_IS = new RegExp(String.raw`(answer is${PY_SPACE}*?)([A-N])`, 'gu');

/** Rule 2's pattern for k options, cached (k only takes 15 values). */
const loneLetterCache = new Map<number, RegExp>();
function loneLetterPattern(optionCount: number): RegExp | null {
  const letters = LETTERS.slice(0, optionCount);
  if (!letters) return null; // no options: Python's pattern would read "[]" as another class; nothing to match here
  let re = loneLetterCache.get(letters.length);
  if (!re) {
    // The alternatives are tried in this order, as in the original; `^` and `$` without the
    // multi-line flag: the very start, and the end (Python's `$` also matches before a final
    // newline, but a newline there is already matched by the non-word alternative before it).
    const before = `${CJK}|is |是|项|\\*|${NON_WORD}| |\\(|为|^|'|"|#`;
    re = new RegExp(`(${before})(?![aA] )([${letters}])(${NON_WORD}|${CJK}|$)`, 'gu');
    loneLetterCache.set(letters.length, re);
  }
  return re;
}

/** The text the letter is read from: after the last "## Final Response\n\n", else all of it. */
export function huatuoFinalResponse(text: string): string {
  const i = text.lastIndexOf(FINAL_RESPONSE_CUT);
  return i < 0 ? text : text.slice(i + FINAL_RESPONSE_CUT.length);
}

/** difflib.SequenceMatcher(None, a, b).ratio() over code points, as Python compares str. */
export function sequenceRatio(a: string, b: string): number {
  return new difflib.SequenceMatcher<string[]>(null, Array.from(a), Array.from(b)).ratio();
}

function firstAndLast(matches: RegExpMatchArray[], rule: HuatuoRule): HuatuoExtraction | null {
  if (matches.length === 0) return null;
  return { first: matches[0][2], last: matches[matches.length - 1][2], rule };
}

/** The latest position's option; on equal positions the earlier option in the item's order. */
function latest(found: [string, number][]): string {
  let best = found[0];
  for (const f of found) if (f[1] > best[1]) best = f;
  return best[0];
}

/** Extracts the first and last chosen letters from a model's output, as HuatuoGPT-o1 does. */
export function huatuoExtract(output: string, options: Record<string, string>): HuatuoExtraction {
  let text = huatuoFinalResponse(output);

  const byPhrase = firstAndLast([...text.matchAll(ANSWER_IS)], 'answer-is');
  if (byPhrase) return byPhrase;

  const keys = Object.keys(options);
  const lone = loneLetterPattern(keys.length);
  const byLetter = lone && firstAndLast([...text.matchAll(lone)], 'lone-letter');
  if (byLetter) return byLetter;

  text = text.toLowerCase();
  const lowered = keys.map((k) => [k, options[k].toLowerCase()] as const);
  // Code-unit positions order occurrences exactly as Python's code-point positions do.
  const present = lowered.filter(([, o]) => text.includes(o));
  if (present.length > 0) {
    return {
      first: latest(present.map(([k, o]) => [k, text.indexOf(o)])),
      last: latest(present.map(([k, o]) => [k, text.lastIndexOf(o)])),
      rule: 'option-text',
    };
  }

  if (keys.length === 0) return { first: null, last: null, rule: null };
  let best = 0;
  let bestKey = keys[0];
  for (const [k, o] of lowered) {
    const r = sequenceRatio(o, text);
    if (r >= best) {
      best = r;
      bestKey = k;
    }
  }
  return { first: bestKey, last: bestKey, rule: 'similarity' };
}

/** Whether an extracted letter is the gold one, compared as the original does (both lowercased). */
export function huatuoCorrect(letter: string | null, answerIdx: string): boolean {
  return letter !== null && letter.toLowerCase() === answerIdx.toLowerCase();
}
