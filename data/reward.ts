/**
 * HuatuoGPT-o1's RL reward, in one place (the step kinds' `reward` defaults, rl/score.ts and
 * the verifiers all take it from here).
 *
 * A response is well formed when its decoded text (special tokens removed) contains
 * `## Final Response` followed by a blank line (`\n\n`) exactly once and `## Thinking` exactly
 * once; otherwise its reward is `malformed` (0.0), whatever the verifier would say. The answer
 * the verifier judges is everything after that `## Final Response\n\n`, stripped of surrounding
 * whitespace as Python's str.strip() does. A well-formed response earns `correct` (1.0) when the
 * verifier accepts it (the model verifier: P(True) strictly above 0.4), else `wrong` (0.1).
 */

export interface RewardMapping {
  correct: number;
  wrong: number;
  malformed: number;
}

/** The recipe's mapping: correct 1.0, well formed but wrong 0.1, malformed 0.0. */
export const HUATUO_REWARD: Readonly<RewardMapping> = Object.freeze({ correct: 1.0, wrong: 0.1, malformed: 0.0 });

/** The model verifier's threshold: P(True) must be strictly greater. */
export const HUATUO_VERIFIER_THRESHOLD = 0.4;

export const FINAL_RESPONSE_MARK = '## Final Response\n\n';
export const THINKING_MARK = '## Thinking';

/** Non-overlapping occurrences, counted left to right (Python's str.count). */
export function countOccurrences(text: string, needle: string): number {
  if (needle === '') throw new Error('countOccurrences: empty needle');
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** The characters Python's str.isspace() accepts (str.strip() with no argument removes these). */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** Python's str.strip(): JavaScript's trim() differs (it strips U+FEFF, keeps U+001C-U+001F and U+0085). */
export function pythonStrip(text: string): string {
  let a = 0, b = text.length;
  while (a < b && PY_SPACE.test(text[a])) a++;
  while (b > a && PY_SPACE.test(text[b - 1])) b--;
  return text.slice(a, b);
}

export interface ResponseFormat {
  /** Both headings exactly once, `## Final Response` followed by a blank line. */
  formatted: boolean;
  /** What the verifier judges: the stripped text after `## Final Response\n\n`; null when not formatted. */
  finalResponse: string | null;
}

/** The format check and answer extraction of HuatuoGPT-o1's RL reward. */
export function huatuoFormat(text: string): ResponseFormat {
  if (countOccurrences(text, FINAL_RESPONSE_MARK) !== 1 || countOccurrences(text, THINKING_MARK) !== 1) {
    return { formatted: false, finalResponse: null };
  }
  return { formatted: true, finalResponse: pythonStrip(text.slice(text.indexOf(FINAL_RESPONSE_MARK) + FINAL_RESPONSE_MARK.length)) };
}

/** The reward of a response from its format and the verifier's verdict. */
export function rewardFor(formatted: boolean, correct: boolean, mapping: RewardMapping = HUATUO_REWARD): number {
  if (!formatted) return mapping.malformed;
  return correct ? mapping.correct : mapping.wrong;
}
