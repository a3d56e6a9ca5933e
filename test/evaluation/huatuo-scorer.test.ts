// The `huatuo` scorer against HuatuoGPT-o1's scorer rules, case by case (the expected letters
// are what the original's evaluation/scorer.py gives for the same output and options).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { huatuoExtract, huatuoFinalResponse, sequenceRatio } from '../../evaluation/huatuo-scorer.ts';
import { DEFAULT_SCORER, SCORERS, scoreResponse, scorerByName, summarize } from '../../evaluation/scorer.ts';

const ABCD = { A: 'Hypertension', B: 'Hypotension', C: 'Sepsis', D: 'Anaphylaxis' };
const AB = { A: 'yes', B: 'no' };
const YNMN = { A: 'yes', B: 'no', C: 'maybe', D: 'none' };
const N14 = Object.fromEntries('ABCDEFGHIJKLMN'.split('').map((k, i) => [k, `choice ${i + 1}`]));

const ex = (output: string, options: Record<string, string> = ABCD) => {
  const r = huatuoExtract(output, options);
  return [r.first, r.last, r.rule];
};

test('the text after the last "## Final Response\\n\\n" only, and only with the blank line', () => {
  assert.equal(huatuoFinalResponse('## Thinking\n\nThe answer is A.\n\n## Final Response\n\nThe answer is C.'), 'The answer is C.');
  assert.deepEqual(ex('The answer is A.\n\n## Final Response\n\nx\n\n## Final Response\n\nThe answer is C.'), ['C', 'C', 'answer-is']);
  // One newline is not the cut: the whole text is read, the earlier answer included.
  assert.deepEqual(ex('The answer is A.\n## Final Response\nThe answer is C.'), ['A', 'C', 'answer-is']);
  // Nothing trimmed: a trailing space stays (and the letter before it still counts).
  assert.equal(huatuoFinalResponse('## Final Response\n\n B '), ' B ');
});

test('rule 1: "answer is", lazy whitespace, A to N, case-sensitive', () => {
  assert.deepEqual(ex('The answer is B. Wait, the answer is D.'), ['B', 'D', 'answer-is']);
  assert.deepEqual(ex('answer is\n\n  C'), ['C', 'C', 'answer-is']);
  assert.deepEqual(ex('the answer isC'), ['C', 'C', 'answer-is']);
  // Any of A–N, even when the item has four options.
  assert.deepEqual(ex('answer is M'), ['M', 'M', 'answer-is']);
  // Capital "Answer is", a lowercase letter, O and past, "**" between: not rule 1.
  assert.deepEqual(ex('Answer is B'), ['B', 'B', 'lone-letter']);
  assert.deepEqual(ex('answer is b, then answer is O', YNMN), ['C', 'C', 'similarity']);
  assert.deepEqual(ex('answer is **C**'), ['C', 'C', 'lone-letter']);
});

test("rule 1's whitespace is Python's: U+0085 and U+001C are spaces, U+FEFF is not", () => {
  assert.deepEqual(ex('answer is\x85C'), ['C', 'C', 'answer-is']);
  assert.deepEqual(ex('answer is\x1cC'), ['C', 'C', 'answer-is']);
  assert.deepEqual(ex('answer is\u3000C'), ['C', 'C', 'answer-is']);
  // U+FEFF is not whitespace to Python, but is a non-word character: rule 2 finds the C.
  assert.deepEqual(ex('answer is\ufeffC'), ['C', 'C', 'lone-letter']);
});

test('rule 2: a lone option letter, by what precedes and follows it', () => {
  assert.deepEqual(ex('B'), ['B', 'B', 'lone-letter']); // the start and the end
  assert.deepEqual(ex('I pick (C), not D.'), ['C', 'D', 'lone-letter']);
  assert.deepEqual(ex('选C项'), ['C', 'C', 'lone-letter']); // CJK before and after
  assert.deepEqual(ex('答案是B'), ['B', 'B', 'lone-letter']);
  assert.deepEqual(ex('this is D!'), ['D', 'D', 'lone-letter']);
  assert.deepEqual(ex('**C**'), ['C', 'C', 'lone-letter']);
  assert.deepEqual(ex('#B#'), ['B', 'B', 'lone-letter']);
  // Only the first k letters for k options: E is not an option of ABCD.
  assert.deepEqual(ex('E.', YNMN), ['A', 'A', 'similarity']);
  assert.deepEqual(ex('N.', N14), ['N', 'N', 'lone-letter']);
  // Letters inside words, after digits or "_", lowercase letters: not found.
  assert.deepEqual(ex('CBD 1B B2 _C b', YNMN), ['C', 'C', 'similarity']);
  // The character after a letter is consumed: it cannot also be the one before the next letter.
  assert.deepEqual(ex('C,D'), ['C', 'C', 'lone-letter']);
  assert.deepEqual(ex('C, D'), ['C', 'D', 'lone-letter']);
});

test('rule 2 never takes an "A" followed by a space, whatever precedes it', () => {
  assert.deepEqual(ex('A patient, so B.'), ['B', 'B', 'lone-letter']);
  assert.deepEqual(ex('(A) is right'), ['A', 'A', 'lone-letter']);
  assert.deepEqual(ex('is A ', AB), ['A', 'A', 'similarity']);
  assert.deepEqual(ex('A\n'), ['A', 'A', 'lone-letter']);
  // Another letter followed by a space is fine.
  assert.deepEqual(ex(' B '), ['B', 'B', 'lone-letter']);
});

test("rule 2's word characters are Python's Unicode ones: letters and numbers of every script, not marks", () => {
  // Letters and numbers of other scripts are word characters: no lone letter.
  for (const c of ['é', 'Ж', 'λ', 'ß', '٣', '²', '①', 'Ⅻ', '\u{1d400}', '\u3400', 'ア']) {
    assert.deepEqual(ex(`${c}B${c}`, AB), ['B', 'B', 'similarity'], `around ${JSON.stringify(c)}`);
    assert.equal(ex(`${c}B${c}`, AB)[2], 'similarity');
  }
  // Combining marks, symbols and format characters are not: the letter is alone.
  for (const c of ['\u0301', '\u093e', '©', '→', '\u{1f600}', '\u200b', '\ufeff']) {
    assert.deepEqual(ex(`x${c}B${c}`, AB), ['B', 'B', 'lone-letter'], `around ${JSON.stringify(c)}`);
  }
  // CJK ideographs of U+4E00–U+9FFF are both "CJK" and word characters; outside it, only word characters.
  assert.deepEqual(ex('\u4e00B\u9fff', AB), ['B', 'B', 'lone-letter']);
  assert.deepEqual(ex('\u3400B\u3400', AB), ['B', 'B', 'similarity']);
});

test('rule 3: option texts in the lowercased text; first is the option whose first occurrence is latest', () => {
  const opts = { A: 'Sepsis', B: 'shock', C: 'renal failure', D: 'none' };
  // last: the latest last occurrence; first: the latest FIRST occurrence (not the earliest).
  assert.deepEqual(ex('sepsis then renal failure, then shock, then sepsis again', opts), ['B', 'A', 'option-text']);
  // Equal positions go to the earlier option: "lung" last occurs where "lung cancer" does.
  assert.deepEqual(ex('lung, then lung cancer', { A: 'lung', B: 'lung cancer' }), ['B', 'A', 'option-text']);
  assert.deepEqual(ex('xx', { A: 'same', B: 'x', C: 'x' }), ['B', 'B', 'option-text']);
  // An empty option text is in every text, its last occurrence at the very end.
  assert.deepEqual(ex('maybe yes', { A: 'yes', B: '' }), ['A', 'B', 'option-text']);
  // Lowercasing is Unicode's: Σ at a word's end becomes ς.
  assert.deepEqual(ex('ΟΔΟΣ', { A: 'οδο\u03c3', B: 'οδο\u03c2' }), ['B', 'B', 'option-text']);
});

test('rule 4: difflib ratio against each lowercased option, ties to the later option', () => {
  assert.deepEqual(ex('hypotensoin', ABCD), ['B', 'B', 'similarity']);
  // Nothing in common: every ratio is 0, so the last option.
  assert.deepEqual(ex('qqq', ABCD), ['D', 'D', 'similarity']);
  assert.deepEqual(ex('', { A: 'x', B: 'x', C: 'y' }), ['C', 'C', 'similarity']);
  assert.equal(sequenceRatio('abcd', 'bcde'), 0.75);
  assert.equal(sequenceRatio('', ''), 1);
  // Code points, not UTF-16 units: one astral character against one.
  assert.equal(sequenceRatio('\u{1f600}', '\u{1f601}'), 0);
});

test("rule 4 keeps difflib's autojunk: in outputs of 200+ code points frequent characters are junk", () => {
  const long = 'the quick brown fox jumps over the lazy dog '.repeat(5); // 220 code points
  assert.equal(sequenceRatio('hypertension', long), 0); // e, t, o, ... all popular: no match at all
  assert.ok(sequenceRatio('hypertension', long.slice(0, 199)) > 0);
});

test('scorer registry: huatuo is the default, rules stays, unknown names are refused', () => {
  assert.equal(DEFAULT_SCORER, 'huatuo');
  assert.equal(scorerByName('rules'), SCORERS.rules);
  assert.throws(() => scorerByName('paper'), /unknown scorer "paper": expected one of huatuo, rules/);
  // The gold letter is compared lowercased, as the original does.
  const s = scoreResponse('The answer is C.', { options: ABCD, answer_idx: 'c' }, SCORERS.huatuo);
  assert.equal(s.correct_first && s.correct_last, true);
  // The scorers differ: rules reads a bracketed lowercase letter, huatuo falls through to similarity.
  assert.equal(scoreResponse('the answer is (d)', { options: ABCD, answer_idx: 'D' }, SCORERS.huatuo).last, 'B');
  assert.equal(scoreResponse('the answer is (d)', { options: ABCD, answer_idx: 'D' }, SCORERS.rules).last, 'D');
});

test('huatuo accounting: empty outputs dropped and counted, per-source max of first and last', () => {
  const row = (source: string, output: string, f: boolean, l: boolean, error?: string) =>
    ({ source, output, correct_first: f, correct_last: l, ...(error ? { error } : {}) });
  const rows = [
    row('X', 'a', true, false),
    row('X', 'b', true, false),
    row('X', 'c', false, true),
    row('X', '', false, false),
    row('Y', 'd', false, true),
    row('Y', 'e', true, false),
    row('Y', 'f', false, true),
    row('Y', '', false, false, 'prompt_too_long'),
    row('Z', '', false, false),
  ];
  const s = summarize(rows, 'max', { dropEmpty: true, scorer: 'huatuo' });
  assert.equal(s.sources.X.n, 3);
  assert.equal(s.sources.X.dropped_empty, 1);
  assert.equal(s.sources.X.accuracy, 2 / 3); // first 2/3 beats last 1/3
  assert.equal(s.sources.Y.n, 4); // a failed item is not an empty output: it stays in n
  assert.equal(s.sources.Y.accuracy, 2 / 4); // last 2/4 beats first 1/4
  assert.equal(s.sources.Z.n, 0);
  assert.equal(s.dropped_empty, 2);
  // Z, with nothing left, is not averaged.
  assert.equal(s.average, (2 / 3 + 2 / 4) / 2);
  assert.equal(s.overall, (2 + 2) / 7);
  assert.match(s.denominator, /empty is left out|output is empty/);
  // Without dropping, the empty outputs count as wrong answers.
  const kept = summarize(rows, 'max');
  assert.equal(kept.sources.X.n, 4);
  assert.equal(kept.sources.X.accuracy, 2 / 4);
});
