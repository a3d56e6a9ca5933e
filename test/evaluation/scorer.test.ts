import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractChoice, finalResponse, scoreResponse, similarity, summarize } from '../../evaluation/scorer.ts';
import { mcqMessages, mcqPrompt, postprocessOutput } from '../../evaluation/prompts.ts';

const ABCD = { A: 'Hypertension', B: 'Hypotension', C: 'Sepsis', D: 'Anaphylaxis' };
const YNM = { A: 'yes', B: 'no', C: 'maybe' };
const TEN = Object.fromEntries('ABCDEFGHIJ'.split('').map((k, i) => [k, `choice number ${i + 1}`]));

test('reads only the text after the last "## Final Response"', () => {
  const text = '## Thinking\n\nThe answer is A, or not.\n\n## Final Response\n\nDraft: answer is B\n\n## Final Response\n\nThe answer is C.';
  assert.equal(finalResponse(text), 'The answer is C.');
  assert.deepEqual(extractChoice(text, ABCD), { first: 'C', last: 'C', rule: 'answer-phrase' });
  assert.equal(finalResponse('  plain text  '), 'plain text');
});

test('answer phrases and their variants', () => {
  const cases: [string, string][] = [
    ['The answer is B.', 'B'],
    ['Answer: (c)', 'C'],
    ['The correct option is **D**.', 'D'],
    ['So the answer would be A', 'A'],
    ['answer: [B]', 'B'],
    ['Final answer = C', 'C'],
  ];
  for (const [text, letter] of cases) {
    const ex = extractChoice(text, ABCD);
    assert.equal(ex.rule, 'answer-phrase', text);
    assert.equal(ex.last, letter, text);
  }
});

test('rule order: an answer phrase beats an earlier parenthesized letter', () => {
  assert.deepEqual(extractChoice('(B) is tempting, but the answer is C.', ABCD), { first: 'C', last: 'C', rule: 'answer-phrase' });
  assert.deepEqual(extractChoice('I would pick (B) here.', ABCD), { first: 'B', last: 'B', rule: 'parenthesized' });
});

test('first and last matches differ when the model changes its mind', () => {
  const ex = extractChoice('The answer is A. On reflection, the answer is D.', ABCD);
  assert.deepEqual(ex, { first: 'A', last: 'D', rule: 'answer-phrase' });
  const s = scoreResponse('The answer is A. On reflection, the answer is D.', { options: ABCD, answer_idx: 'D' });
  assert.equal(s.correct_first, false);
  assert.equal(s.correct_last, true);
});

test('prose is not mistaken for an answer letter', () => {
  // "a" lowercase without brackets is an article, and the option text then decides.
  assert.deepEqual(extractChoice('The answer is a case of sepsis.', ABCD), { first: 'C', last: 'C', rule: 'option-text' });
  // "A patient" is an article; the lone "B" is the answer.
  assert.deepEqual(extractChoice('A patient like this one needs B.', ABCD), { first: 'B', last: 'B', rule: 'lone-letter' });
  // A letter outside the options is never returned.
  const ex = extractChoice('The answer is E', ABCD);
  assert.notEqual(ex.first, 'E');
  assert.notEqual(ex.last, 'E');
});

test('lone letters', () => {
  assert.deepEqual(extractChoice('B.', ABCD), { first: 'B', last: 'B', rule: 'lone-letter' });
  assert.deepEqual(extractChoice('**C**', ABCD), { first: 'C', last: 'C', rule: 'lone-letter' });
  assert.deepEqual(extractChoice('Between B and D, D', ABCD), { first: 'B', last: 'D', rule: 'lone-letter' });
});

test('option text, longest wins where texts overlap', () => {
  assert.deepEqual(extractChoice('This is anaphylaxis after a bee sting.', ABCD), { first: 'D', last: 'D', rule: 'option-text' });
  const opts = { A: 'Vitamin deficiency', B: 'Vitamin deficiency of the B group' };
  // Lowercase on purpose, so that no lone capital letter decides first.
  assert.deepEqual(extractChoice('a vitamin deficiency of the b group', opts), { first: 'B', last: 'B', rule: 'option-text' });
});

test('PubMedQA yes / no / maybe', () => {
  assert.deepEqual(extractChoice('## Final Response\n\nYes, the data support it.', YNM), { first: 'A', last: 'A', rule: 'option-text' });
  assert.deepEqual(extractChoice('No.', YNM), { first: 'B', last: 'B', rule: 'option-text' });
  assert.deepEqual(extractChoice('Maybe; there is no clear evidence.', YNM), { first: 'C', last: 'B', rule: 'option-text' });
  // "no" inside "not" or "unknown" is not the option "no".
  assert.notEqual(extractChoice('It is not known.', YNM).rule, 'option-text');
  assert.deepEqual(extractChoice('The answer is (C).', YNM), { first: 'C', last: 'C', rule: 'answer-phrase' });
});

test('MMLU-Pro: up to ten options, letters A to J', () => {
  assert.deepEqual(extractChoice('The answer is (J).', TEN), { first: 'J', last: 'J', rule: 'answer-phrase' });
  assert.deepEqual(extractChoice('The answer is I.', TEN), { first: 'I', last: 'I', rule: 'answer-phrase' });
  assert.deepEqual(extractChoice('H', TEN), { first: 'H', last: 'H', rule: 'lone-letter' });
  assert.deepEqual(extractChoice('It must be choice number 10', TEN), { first: 'J', last: 'J', rule: 'option-text' });
  // With only four options, J is not an answer.
  assert.notEqual(extractChoice('The answer is J.', ABCD).last, 'J');
});

test('nearest option by string similarity as the last resort', () => {
  assert.deepEqual(extractChoice('hypertensive', ABCD), { first: 'A', last: 'A', rule: 'similarity' });
  assert.deepEqual(extractChoice('', ABCD), { first: null, last: null, rule: null });
  assert.equal(similarity('sepsis', 'Sepsis.'), 1);
  assert.ok(similarity('hypertensive', 'Hypertension') > similarity('hypertensive', 'Hypotension'));
});

test('accuracy per source, the average of sources and both policies', () => {
  const rows = [
    { source: 'X', correct_first: true, correct_last: true },
    { source: 'X', correct_first: false, correct_last: true },
    { source: 'X', correct_first: false, correct_last: false },
    { source: 'X', correct_first: true, correct_last: false },
    { source: 'Y', correct_first: true, correct_last: true },
  ];
  const s = summarize(rows);
  assert.equal(s.policy, 'last');
  assert.deepEqual(Object.keys(s.sources), ['X', 'Y']);
  assert.equal(s.sources.X.accuracy_last, 0.5);
  assert.equal(s.sources.X.accuracy_first, 0.5);
  assert.equal(s.sources.Y.accuracy, 1);
  assert.equal(s.average, 0.75);
  assert.equal(s.overall, 3 / 5);
  const f = summarize(rows.slice(1), 'first');
  assert.equal(f.sources.X.accuracy, 1 / 3);
  assert.equal(f.average, (1 / 3 + 1) / 2);
  assert.equal(summarize([]).average, 0);
});

test("prompts: HuatuoGPT-o1's words, options in the item's order; output post-processing", () => {
  const item = { question: 'Which is low blood pressure?', options: { B: 'Hypotension', A: 'Hypertension' } };
  assert.equal(mcqPrompt(item), 'Please answer the following multiple-choice question:\nWhich is low blood pressure?\nB. Hypotension\nA. Hypertension');
  assert.equal(mcqPrompt(item, true),
    "Please answer the following multiple-choice questions. Please answer the following multiple-choice questions, ensuring your response concludes with the correct option in the format: 'The answer is A.'.\n" +
    'Which is low blood pressure?\nB. Hypotension\nA. Hypertension');
  assert.deepEqual(mcqMessages(item), [{ role: 'user', content: mcqPrompt(item) }]);
  assert.equal(postprocessOutput('  The answer</s> is B.</s>'), ' The answer is B.');
  assert.equal(postprocessOutput(' </s>'), '');
  assert.equal(postprocessOutput('B'), 'B');
});
