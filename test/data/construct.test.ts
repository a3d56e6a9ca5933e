// The teacher (GPT-4o in the recipe) cannot be reached from the test machine: a scripted
// OpenAI-compatible server on 127.0.0.1 plays it, over real HTTP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openQuestion, templateConstruct } from '../../data/construct.ts';
import { loadItems } from '../../data/loaders.ts';
import { run } from '../../jobs/data.construct_verifiable.ts';
import { startOpenAiServer } from '../helpers/openai-server.ts';
import { recordingContext } from './job-ctx.ts';
import { kindOf, questionOf } from './teacher-script.ts';

const DEMO = resolve(dirname(fileURLToPath(import.meta.url)), '../../samples/huatuo-o1-demo.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'construct-'));

test('openQuestion drops the pointer to an option list', () => {
  assert.equal(openQuestion('Which of the following is the most likely diagnosis?'), 'What is the most likely diagnosis?');
  assert.equal(openQuestion('A 45-year-old man... Which of the following drugs caused it?'), 'A 45-year-old man... Which drugs caused it?');
  assert.equal(openQuestion('Which of the following are risk factors?'), 'What are risk factors?');
  assert.equal(openQuestion('What is the mechanism?'), 'What is the mechanism?');
});

test('template method: options dropped, ground truth = the correct option text, option-bound items labelled', () => {
  const kept = templateConstruct({ question: 'Which of the following is the most likely diagnosis?', options: { A: 'Gout', B: 'Pseudogout' }, answer_idx: 'B', answer: 'Pseudogout' });
  assert.equal(kept.status, 'kept');
  if (kept.status === 'kept') {
    assert.equal(kept.item['Open-ended Verifiable Question'], 'What is the most likely diagnosis?\n\nGive the single best answer.');
    assert.equal(kept.item['Ground-True Answer'], 'Pseudogout');
  }
  const bound = templateConstruct({ question: 'All of the following are true EXCEPT:', options: { A: 'x', B: 'y' }, answer_idx: 'A', answer: 'x' });
  assert.deepEqual(bound.status === 'filtered' && bound.label, 'not reformulatable');
  const allAbove = templateConstruct({ question: 'What is seen?', options: { A: 'x', B: 'All of the above' }, answer_idx: 'B', answer: 'All of the above' });
  assert.equal(allAbove.status, 'filtered');
});

test('template job over the demo file: deterministic, every kept item matches its MCQ', async () => {
  const outs: string[] = [];
  for (const dir of [tmp(), tmp()]) {
    const ctx = recordingContext({ input: DEMO, method: 'template' }, dir);
    const out = await run(ctx);
    outs.push(readFileSync(out.verifiable as string, 'utf8'));
    const report = JSON.parse(readFileSync(out.report as string, 'utf8'));
    const items = loadItems(out.verifiable as string, 'verifiable').items;
    assert.equal(report.total, 198);
    assert.equal(report.kept, items.length);
    assert.equal(report.kept + report.filtered, 198);
    assert.ok(report.kept > 150, `kept ${report.kept}`);
    for (const it of items) {
      const mcq = it as unknown as { options: Record<string, string>; answer_idx: string };
      assert.equal(it['Ground-True Answer'], mcq.options[mcq.answer_idx].trim());
      assert.doesNotMatch(it['Open-ended Verifiable Question'], /which of the following/i);
    }
    assert.deepEqual(ctx.messages.filter((m) => m.type === 'artifact').map((m) => (m as { name: string }).name), ['verifiable', 'report']);
  }
  assert.equal(outs[0], outs[1]);
});

const LABELS = ['pass', 'too simple', 'ambiguous answer', 'not reformulatable', 'pass', 'Pass', 'pass', 'pass'];

function mcqFile(n: number): string {
  const file = join(tmp(), 'mcq.jsonl');
  const rows = Array.from({ length: n }, (_, i) => JSON.stringify({ question: `Q${i}: which of the following is right?`, options: { A: `wrong ${i}`, B: `right ${i}` }, answer_idx: 'B', answer: `right ${i}` }));
  writeFileSync(file, rows.join('\n') + '\n');
  return file;
}

test('llm method: the filter label decides, only "pass" is rewritten; the report counts labels, failures and usage', async () => {
  const server = await startOpenAiServer((req) => {
    const kind = kindOf(req.prompt);
    const i = Number(/Q(\d+):/.exec(questionOf(req.prompt))?.[1]);
    if (kind === 'filter') return i === 5 ? "```json\n{'label': 'Pass', 'reason': 'fine',}\n```" : JSON.stringify({ label: LABELS[i], reason: 'because' });
    if (kind === 'rewrite') return i === 6 ? 'I cannot do that.' : `Here you go: {"Open-ended Verifiable Question": "Open Q${i}?", "Ground-True Answer": "right ${i}"}`;
    return { status: 400 };
  });
  try {
    const input = mcqFile(8);
    const ctx = recordingContext({ input, method: 'llm', teacher: { base_url: server.url, model: 'teacher', api_key_env: 'NO_SUCH_KEY_VAR', concurrency: 3 } }, tmp());
    const out = await run(ctx);
    const report = JSON.parse(readFileSync(out.report as string, 'utf8'));
    const items = loadItems(out.verifiable as string, 'verifiable').items;
    assert.deepEqual(items.map((x) => x['Open-ended Verifiable Question']), ['Open Q0?', 'Open Q4?', 'Open Q5?', 'Open Q7?']);
    assert.deepEqual(items.map((x) => x['Ground-True Answer']), ['right 0', 'right 4', 'right 5', 'right 7']);
    assert.equal((items[0] as Record<string, unknown>).answer_idx, 'B', 'the MCQ fields are kept beside the new ones');
    assert.deepEqual(report.labels, { pass: 5, 'too simple': 1, 'ambiguous answer': 1, 'not reformulatable': 1 });
    assert.equal(report.failed, 1);
    assert.match(report.failures[0].where, /mcq\.jsonl:7$/);
    assert.match(report.failures[0].error, /no usable JSON/);
    assert.equal(report.usage.requests, 8 + 5 + 2, '8 filters, 5 rewrites, 2 re-asks of the malformed one');
    assert.ok(report.usage.promptTokens > 0);
    const kinds = server.requests.map((r) => kindOf(r.prompt));
    assert.equal(kinds.filter((k) => k === 'filter').length, 8);
    assert.ok(server.requests[0].prompt.includes('"pass"') && server.requests[0].prompt.includes('"not reformulatable"'));
    assert.equal(ctx.messages.filter((m) => m.type === 'checkpoint').length, 8);
    assert.ok(ctx.messages.some((m) => m.type === 'log' && /NO_SUCH_KEY_VAR is not set/.test(m.message)));
  } finally {
    await server.close();
  }
});

test('llm method without the filter rewrites every item', async () => {
  const server = await startOpenAiServer((req) => JSON.stringify({ 'Open-ended Verifiable Question': `Open ${questionOf(req.prompt)}`, 'Ground-True Answer': 'x' }));
  try {
    const out = await run(recordingContext({ input: mcqFile(3), method: 'llm', filter: false, teacher: { base_url: server.url, model: 't' } }, tmp()));
    assert.equal(loadItems(out.verifiable as string, 'verifiable').items.length, 3);
    assert.deepEqual(server.requests.map((r) => kindOf(r.prompt)), ['rewrite', 'rewrite', 'rewrite']);
  } finally {
    await server.close();
  }
});

test('bad params and bad records are user errors that say where', async () => {
  await assert.rejects(run(recordingContext({ input: 'x.json', method: 'llm' }, tmp())), /teacher: method llm needs a teacher/);
  const file = join(tmp(), 'bad.jsonl');
  writeFileSync(file, '{"question": "q", "options": {"A": "a", "B": "b"}, "answer_idx": "C", "answer": "c"}\n');
  await assert.rejects(run(recordingContext({ input: file, method: 'template' }, tmp())), (e: Error) => e.name === 'DataError' && /bad\.jsonl:1: field "answer_idx"/.test(e.message));
});

test('stopping (SIGTERM) keeps the finished items; the next run does only the rest', async () => {
  const server = await startOpenAiServer((req) => ({ delayMs: 20, then: JSON.stringify({ 'Open-ended Verifiable Question': `Open ${questionOf(req.prompt)}`, 'Ground-True Answer': 'x' }) }));
  try {
    const input = mcqFile(12);
    const outDir = tmp();
    const params = { input, method: 'llm', filter: false, teacher: { base_url: server.url, model: 't', concurrency: 2 } };
    const stop = new AbortController();
    const ctx = recordingContext(params, outDir, stop.signal);
    const realCheckpoint = ctx.checkpoint;
    ctx.checkpoint = (path, step) => {
      realCheckpoint(path, step);
      if (step === 4) stop.abort();
    };
    await assert.rejects(run(ctx), /stopped with \d+ items unfinished/);
    // Finished items are in the cache; a request aborted at the stop may still land at the server late, so compare by content.
    const cached = readFileSync(join(outDir, 'items.cache.jsonl'), 'utf8').trim().split('\n')
      .map((l) => (JSON.parse(l) as { value: { item: { question: string } } }).value.item.question);
    assert.ok(cached.length >= 4 && cached.length < 12, `cached ${cached.length}`);
    const firstCount = server.requests.length;
    const out = await run(recordingContext(params, outDir));
    const second = server.requests.slice(firstCount).map((r) => questionOf(r.prompt)).filter((q) => !cached.includes(q));
    assert.equal(new Set(second).size, 12 - cached.length, 'every unfinished item asked');
    assert.equal(new Set([...cached, ...second]).size, 12);
    assert.equal(loadItems(out.verifiable as string, 'verifiable').items.length, 12);
    const report = JSON.parse(readFileSync(out.report as string, 'utf8'));
    assert.equal(report.resumed_from_cache, cached.length);
    assert.ok(server.requests.slice(firstCount).length <= 12 - cached.length + 2, 'at most the requests in flight at the stop arrive late');
  } finally {
    await server.close();
  }
});
