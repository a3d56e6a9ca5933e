import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractJson, JsonExtractError } from '../../data/json-extract.ts';

test('plain JSON and JSON inside a code fence with prose around it', () => {
  assert.deepEqual(extractJson('{"a": 1}'), { a: 1 });
  assert.deepEqual(extractJson('Sure! Here it is:\n```json\n{"label": "pass", "reason": "ok"}\n```\nHope this helps.'), { label: 'pass', reason: 'ok' });
  assert.deepEqual(extractJson('```\n[1, 2]\n```'), [1, 2]);
});

test('leading and trailing prose without a fence; braces inside strings do not confuse it', () => {
  assert.deepEqual(extractJson('The answer: {"x": "a } tricky { string", "y": [1]} -- done {not json}'), { x: 'a } tricky { string', y: [1] });
});

test('trailing commas are removed, but not commas inside strings', () => {
  assert.deepEqual(extractJson('{"CoT": [{"action": "A", "content": "x, ]",},],}'), { CoT: [{ action: 'A', content: 'x, ]' }] });
});

test('single-quoted keys and strings become double-quoted; apostrophes inside words stay', () => {
  assert.deepEqual(extractJson("{'label': 'pass', 'reason': 'it doesn\\'t need \"options\"'}"), { label: 'pass', reason: 'it doesn\'t need "options"' });
  assert.deepEqual(extractJson(`{"reason": "the patient's history"}`), { reason: "the patient's history" });
});

test('Python literals and smart quotes', () => {
  assert.deepEqual(extractJson("{'ok': True, 'bad': False, 'none': None, 'text': 'True story'}"), { ok: true, bad: false, none: null, text: 'True story' });
  assert.deepEqual(extractJson('{\u201clabel\u201d: \u201cpass\u201d}'), { label: 'pass' });
});

test('what it cannot repair is reported with the reason', () => {
  assert.throws(() => extractJson('{"CoT": [{"action": "Inner Thinking", "content": "cut off'), (e: unknown) => e instanceof JsonExtractError && /not closed/.test(e.message));
  assert.throws(() => extractJson('I think the answer is B.'), /no "\{" or "\["/);
  assert.throws(() => extractJson('{label: pass}'), /invalid JSON after repairs/);
  assert.throws(() => extractJson('{"a": 1 "b": 2}'), JsonExtractError);
});
