import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError, loadEvalFile, loadItems, writeJsonArray, writeJsonl } from '../../data/loaders.ts';
import { UserError } from '../../contract/errors.ts';

// The sample data files shipped in the repository (samples/README.md).
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLES = join(ROOT, 'samples');
const DEMO = join(SAMPLES, 'huatuo-o1-demo.json');
const EVAL = join(SAMPLES, 'eval-format-sample.json');

test('every shipped data file loads: the demo file in all three formats', () => {
  const raw = JSON.parse(readFileSync(DEMO, 'utf8')) as Record<string, unknown>[];
  for (const format of ['mcq', 'verifiable', 'sft'] as const) {
    const r = loadItems(DEMO, format);
    assert.equal(r.items.length, 198);
    assert.equal(r.skipped, 0);
    assert.deepEqual(r.items, raw, 'records are kept as they are, every field included');
    assert.equal(r.where[5], `${DEMO}: record [5]`);
  }
});

test('every shipped data file loads: the evaluation file, its five sources, texts untouched', () => {
  const raw = JSON.parse(readFileSync(EVAL, 'utf8')) as Record<string, unknown[]>;
  const r = loadEvalFile(EVAL);
  assert.deepEqual(Object.keys(r.sources), ['MedMCQA_validation', 'MedQA_USLME_test', 'PubMedQA_test', 'MMLU-Pro_Medical_test', 'GPQA_Medical_test']);
  assert.deepEqual(r.sources, raw);
  const texts = Object.values(raw).flat().map((x) => JSON.stringify(x));
  assert.ok(texts.some((t) => t.includes('\\t') || t.includes('\\"')), 'the sample keeps its stray tabs/quotes, and they load as they are');
  for (const items of Object.values(r.sources)) assert.equal(items.length, 6);
});

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'loaders-'));
}

const good = { question: 'Q?', options: { A: 'x', B: 'y' }, answer_idx: 'B', answer: 'y' };

test('JSONL: each bad record is named by file and line, with what is wrong (policy fail)', () => {
  const file = join(tmp(), 'mcq.jsonl');
  const lines = [
    JSON.stringify(good),
    '',
    JSON.stringify({ ...good, answer_idx: 'E' }),
    '{"question": "broken',
    JSON.stringify({ options: { A: 'x', B: 'y' }, answer_idx: 'A', answer: 'x' }),
    JSON.stringify({ ...good, options: 'A. x' }),
  ];
  writeFileSync(file, lines.join('\n') + '\n');
  assert.throws(() => loadItems(file, 'mcq'), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.match(e.message, /4 bad record/);
    assert.match(e.message, new RegExp(`${file}:3: field "answer_idx": "E" is not one of the option letters \\(A, B\\)`));
    assert.match(e.message, new RegExp(`${file}:4: invalid JSON`));
    assert.match(e.message, new RegExp(`${file}:5: field "question": .*expected string`));
    assert.match(e.message, new RegExp(`${file}:6: field "options"`));
    assert.doesNotMatch(e.message, /mcq\.jsonl:1:/);
    assert.match(e.hint ?? '', /on_bad_record: skip/);
    return true;
  });
});

test('JSONL: policy skip keeps the good records and counts the bad ones', () => {
  const file = join(tmp(), 'v.jsonl');
  writeFileSync(file, [
    JSON.stringify({ 'Open-ended Verifiable Question': 'What?', 'Ground-True Answer': 'That' }),
    JSON.stringify({ 'Open-ended Verifiable Question': 'What?', 'Ground-True Answer': '' }),
    JSON.stringify({ 'Open-ended Verifiable Question': 'Why?', 'Ground-True Answer': 'Because' }),
  ].join('\n'));
  const r = loadItems(file, 'verifiable', { policy: 'skip' });
  assert.equal(r.items.length, 2);
  assert.equal(r.skipped, 1);
  assert.deepEqual(r.where, [`${file}:1`, `${file}:3`]);
  assert.match(r.problems[0], new RegExp(`^${file}:2: field "Ground-True Answer"`));
});

test('JSON array: bad records named by index; the listing is capped, the rest counted', () => {
  const file = join(tmp(), 'sft.json');
  const items = Array.from({ length: 30 }, (_, i) => (i % 2 ? { Question: 'q', Complex_CoT: 'c', Response: 'r' } : { Question: 'q', Response: 'r' }));
  writeFileSync(file, JSON.stringify(items));
  assert.throws(() => loadItems(file, 'sft', { maxListed: 5 }), (e: unknown) => {
    const msg = (e as Error).message;
    assert.match(msg, /15 bad record/);
    assert.match(msg, /sft\.json: record \[0\]: field "Complex_CoT"/);
    assert.match(msg, /record \[8\]/);
    assert.doesNotMatch(msg, /record \[10\]/);
    assert.match(msg, /and 10 more/);
    return true;
  });
});

test('evaluation object: a bad record is named by source and index', () => {
  const file = join(tmp(), 'eval.json');
  writeFileSync(file, JSON.stringify({ MedQA: [good, good], PubMedQA: [good, { ...good, question: '' }] }));
  const r = loadEvalFile(file, { policy: 'skip' });
  assert.equal(r.skipped, 1);
  assert.match(r.problems[0], /\["PubMedQA"\]\[1\]: field "question"/);
  assert.equal(r.sources.MedQA.length, 2);
  assert.equal(r.sources.PubMedQA.length, 1);
});

test('a file that is not valid JSON, or not a list, says where and what to do', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'a.json'), '[\n  {"question": "x",}\n]');
  assert.throws(() => loadItems(join(dir, 'a.json'), 'mcq'), /a\.json:2:\d+: invalid JSON/);
  writeFileSync(join(dir, 'b.json'), '{"question": "x"}');
  assert.throws(() => loadItems(join(dir, 'b.json'), 'mcq'), /expected a JSON array/);
  assert.throws(() => loadItems(join(dir, 'missing.json'), 'mcq'), /missing\.json: file not found/);
});

test('writers: JSON array and JSONL round-trip, atomically (no temp files left)', () => {
  const dir = tmp();
  const items = [{ Question: 'q\ttab "quoted"', Complex_CoT: 'c', Response: 'r' }, { Question: 'q2', Complex_CoT: 'c2', Response: 'r2' }];
  writeJsonArray(join(dir, 'out.json'), items);
  writeJsonl(join(dir, 'out.jsonl'), items);
  assert.deepEqual(loadItems(join(dir, 'out.json'), 'sft').items, items);
  assert.deepEqual(loadItems(join(dir, 'out.jsonl'), 'sft').items, items);
  assert.equal(readFileSync(join(dir, 'out.jsonl'), 'utf8').split('\n').length, 3);
  assert.deepEqual(readdirSync(dir).sort(), ['out.json', 'out.jsonl']);
});

test('an MCQ answer_idx must be one of its own option letters, never a built-in name', () => {
  const file = join(tmp(), 'mcq.jsonl');
  const names = ['toString', 'constructor', '__proto__', 'hasOwnProperty'];
  writeFileSync(file, [good, ...names.map((answer_idx) => ({ ...good, answer_idx }))].map((x) => JSON.stringify(x)).join('\n') + '\n');
  const r = loadItems(file, 'mcq', { policy: 'skip' });
  assert.equal(r.items.length, 1);
  assert.deepEqual(r.problems, names.map((n, i) => `${file}:${i + 2}: field "answer_idx": "${n}" is not one of the option letters (A, B)`));
});

test('evaluation sources named like built-ins are ordinary sources', () => {
  const file = join(tmp(), 'eval.json');
  writeFileSync(file, '{"__proto__": [' + JSON.stringify(good) + '], "constructor": [' + JSON.stringify(good) + ', ' + JSON.stringify(good) + ']}');
  const r = loadEvalFile(file);
  assert.deepEqual(Object.keys(r.sources), ['__proto__', 'constructor']);
  assert.equal(r.sources.constructor.length, 2);
  assert.equal(Object.getOwnPropertyDescriptor(r.sources, '__proto__')?.value.length, 1);
});

test('bytes that are not UTF-8 in a data file are an error naming the file and line, not U+FFFD', () => {
  const dir = tmp();
  const latin1 = Buffer.from([0x43, 0x61, 0x66, 0xe9]); // "Café" in Latin-1
  const record = (q: Buffer) => Buffer.concat([Buffer.from('{"question": "'), q, Buffer.from('", "options": {"A": "x", "B": "y"}, "answer_idx": "A", "answer": "x"}')]);
  const jsonl = join(dir, 'mcq.jsonl');
  writeFileSync(jsonl, Buffer.concat([record(Buffer.from('ok')), Buffer.from('\n'), record(Buffer.from('ok')), Buffer.from('\n'), record(latin1), Buffer.from('\n')]));
  const json = join(dir, 'mcq.json');
  writeFileSync(json, Buffer.concat([Buffer.from('[\n'), record(Buffer.from('ok')), Buffer.from(',\n'), record(latin1), Buffer.from('\n]\n')]));
  for (const [file, line] of [[jsonl, 3], [json, 3]] as const) {
    for (const policy of ['fail', 'skip'] as const) {
      assert.throws(() => loadItems(file, 'mcq', { policy }), (e: unknown) => {
        assert.ok(e instanceof UserError, String(e));
        assert.equal(e.message, `${file}:${line}: line ${line} holds bytes that are not UTF-8 (0xe9 at byte 18 of the line)`);
        assert.match(e.hint ?? '', /iconv -f latin1 -t utf-8/);
        return true;
      });
    }
  }
  // Real UTF-8 (and a real U+FFFD) loads as written.
  const ok = join(dir, 'ok.jsonl');
  writeFileSync(ok, record(Buffer.from('Café \ufffd')));
  assert.equal(loadItems(ok, 'mcq').items[0].question, 'Café \ufffd');
});
