// The evaluation client over real HTTP on 127.0.0.1: against the built-in server (with
// the scripted stand-in model from scripted-backend.ts, so answers are known exactly)
// and against small scripted servers that fail on purpose.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEval, evalItems } from '../../evaluation/client.ts';
import { readResults } from '../../evaluation/results.ts';
import { renderReportHtml } from '../../evaluation/report.ts';
import { startServer } from '../../evaluation/server.ts';
import { seedFromString } from '../../common/rng.ts';
import { rowSeed } from '../../engine/generate.ts';
import { readJsonFile } from '../../common/fs.ts';
import type { SamplingParams } from '../../evaluation/backend.ts';
import { scriptedBackend } from './scripted-backend.ts';

const SAMPLE = join(import.meta.dirname, '../../samples/eval-format-sample.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'eval-client-'));

/** The stand-in "model" picks the option with the longest text (ties: earliest letter). */
function longestOption(options: Record<string, string>): string {
  return Object.keys(options).sort().reduce((best, k) => (options[k].length > options[best].length ? k : best));
}
const seen: SamplingParams[] = [];
const backend = scriptedBackend((prompt, sampling) => {
  seen.push(sampling);
  const options: Record<string, string> = {};
  for (const m of prompt.matchAll(/^([A-J])\. (.*)$/gm)) options[m[1]] = m[2];
  return `## Thinking\n\nComparing the options.\n\n## Final Response\n\nThe answer is ${longestOption(options)}.`;
});

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

test('the eval-format sample is evaluated end to end through the built-in server', async () => {
  const server = await startServer({ backend, maxBatch: 16 });
  closers.push(() => server.close(1000));
  const out = tmp();
  const progress: number[] = [];
  const report = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: `${server.url}/v1`, model: 'scripted', outDir: out, concurrency: 8, onProgress: (d) => progress.push(d) });

  // Expected accuracy computed from the file itself, independently of the client.
  const raw = readJsonFile<Record<string, { options: Record<string, string>; answer_idx: string }[]>>(SAMPLE);
  assert.deepEqual(Object.keys(report.accuracy.sources), Object.keys(raw));
  let sum = 0;
  for (const [source, items] of Object.entries(raw)) {
    const acc = items.filter((it) => longestOption(it.options) === it.answer_idx).length / items.length;
    assert.equal(report.accuracy.sources[source].accuracy, acc, source);
    assert.equal(report.accuracy.sources[source].n, 6);
    sum += acc;
  }
  assert.equal(report.accuracy.average, sum / Object.keys(raw).length);
  assert.equal(report.counts.items, 30);
  assert.equal(report.counts.asked, 30);
  assert.equal(report.counts.no_answer, 0);
  assert.ok(report.tokens.completion > 0 && report.tokens.completion_per_s > 0);
  assert.equal(progress.at(-1), 30);
  assert.ok(server.scheduler.stats.maxRunning > 1, 'requests were batched');

  // Sampling defaults and per-item seeds reached the server.
  assert.equal(seen.length, 30);
  assert.ok(seen.every((s) => s.temperature === 0.5 && s.topP === 0.9));
  const rows = readResults(join(out, 'results.jsonl'));
  assert.equal(rows.length, 30);
  // The server samples a request's only choice from the stream rowSeed(seed, 0).
  assert.deepEqual(new Set(seen.map((s) => s.seed)), new Set(rows.map((r) => rowSeed(r.seed, 0))));
  const r0 = rows.find((r) => r.id === 'PubMedQA_test/0')!;
  assert.equal(r0.seed, seedFromString('0:PubMedQA_test/0'));
  assert.match(r0.prompt, /^Please answer the following multiple-choice question:\n/);
  assert.match(r0.prompt, /\nA\. yes\nB\. no\nC\. maybe$/);
  assert.equal(r0.rule, 'answer-phrase');
  assert.equal(r0.correct, r0.last === r0.gold);
  assert.deepEqual(readJsonFile(join(out, 'report.json')), JSON.parse(JSON.stringify(report)));

  // The HTML report: one bar per source, and a line chart once there is history.
  const html = await renderReportHtml(report);
  const bars = html.match(/aria-roledescription="bar"/g) ?? [];
  assert.equal(bars.length, 5);
  for (const source of Object.keys(raw)) assert.ok(html.includes(source), source);
  assert.ok(!html.includes('accuracy-over-time'));
  const earlier = { ...report, timing: { ...report.timing, finished_at: '2026-01-01T00:00:00.000Z' } };
  const withHistory = await renderReportHtml(report, [earlier]);
  assert.ok(withHistory.includes('id="accuracy-over-time"'));
  assert.ok((withHistory.match(/aria-roledescription="line mark"/g) ?? []).length >= 6, 'a line per source and the average');
});

/** A scripted OpenAI-style server: `reply(body, attempt)` gives [status, body]; counts attempts per prompt. */
async function scriptedServer(reply: (body: any, attempt: number) => [number, unknown, Record<string, string>?]) {
  const attempts = new Map<string, number>();
  let requests = 0;
  const server: Server = createServer(async (req, res) => {
    let text = '';
    for await (const c of req) text += c;
    const body = JSON.parse(text);
    const key = body.messages[0].content;
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    requests++;
    const [status, out, headers] = reply(body, n);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(out));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, attempts, requests: () => requests };
}
const ok = (content: string) => ({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 5 } });
const fast = { maxRetries: 3, initialBackoffMs: 1, maxBackoffMs: 5 };

test('429 and 500 are retried with backoff, then the answers count', async () => {
  const s = await scriptedServer((_b, attempt) =>
    attempt === 1 ? [429, { error: 'slow down' }, { 'retry-after': '0' }] : attempt === 2 ? [500, { error: 'oops' }] : [200, ok('The answer is A.')]);
  const out = tmp();
  const report = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 2, http: fast });
  assert.equal(report.counts.items, 10);
  assert.equal(report.counts.retries, 20);
  assert.equal(s.requests(), 30);
  assert.ok([...s.attempts.values()].every((n) => n === 3));
  const rows = readResults(join(out, 'results.jsonl'));
  assert.ok(rows.every((r) => r.last === 'A' && r.correct === (r.gold === 'A')));
});

test('requests that keep failing fail the run, keeping the answers already written', async () => {
  // The first GPQA item (about a large gene), asked last, always gets 503; the others are answered.
  const s = await scriptedServer((body) => (body.messages[0].content.includes('A large gene') ? [503, { error: 'down' }] : [200, ok('B')]));
  const out = tmp();
  await assert.rejects(
    runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 1, concurrency: 1, http: { ...fast, maxRetries: 1 } }),
    (err: Error) => {
      assert.equal(err.name, 'EvalRunError');
      assert.match(err.message, /^evaluation stopped: the server at http:\/\/127\.0\.0\.1:\d+\/v1 kept failing after 1 retries \(HTTP 503.*1 of 5 item\(s\) have no result yet; .*run again to ask only the missing ones$/s);
      return true;
    },
  );
  const kept = readResults(join(out, 'results.jsonl'));
  assert.equal(kept.length, 4);
  assert.ok(!kept.some((r) => r.id === 'GPQA_Medical_test/0'));
  assert.equal(s.attempts.get([...s.attempts.keys()].find((k) => k.includes('A large gene'))!), 2);
  assert.ok(!existsSync(join(out, 'report.json')));
});

test('resume: items in the results file are not asked again; a torn last line is repaired', async () => {
  const s = await scriptedServer(() => [200, ok('The answer is C.')]);
  const out = tmp();
  await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 2, http: fast });
  assert.equal(s.requests(), 10);
  const file = join(out, 'results.jsonl');
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  // Keep four rows and half of a fifth, as if the process died while writing it.
  writeFileSync(file, lines.slice(0, 4).join('\n') + '\n' + lines[4].slice(0, 25));
  const again = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 2, http: fast });
  assert.equal(s.requests(), 16);
  assert.equal(again.counts.resumed, 4);
  assert.equal(again.counts.asked, 6);
  const rows = readResults(file);
  assert.equal(rows.length, 10);
  assert.equal(new Set(rows.map((r) => r.id)).size, 10);
  // The strict prompt is a different question: every item is asked again.
  const strict = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 2, strict: true, http: fast });
  assert.equal(strict.counts.resumed, 0);
  assert.equal(s.requests(), 26);
  // Damage before the last line is not silently dropped.
  writeFileSync(file, 'garbage\n' + readFileSync(file, 'utf8'));
  await assert.rejects(runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 2, http: fast }), /results\.jsonl:1: not a result row/);
});

test('limit per source keeps the first items of each source, in file order', () => {
  const items = evalItems(SAMPLE, 3);
  assert.equal(items.length, 15);
  assert.deepEqual(items.slice(0, 3).map((i) => i.id), ['MedMCQA_validation/0', 'MedMCQA_validation/1', 'MedMCQA_validation/2']);
});

test('a bad item in the evaluation file is reported with its source and index, before anything is asked', async () => {
  const dir = tmp();
  const file = join(dir, 'eval.json');
  writeFileSync(file, JSON.stringify({ S: [{ question: 'q', options: { A: 'x', B: 'y' }, answer_idx: 'A', answer: 'x' }, { question: 'q2', options: { A: 'x', B: 'y' }, answer_idx: 'C', answer: '?' }] }));
  await assert.rejects(runEval({ api: 'chat', scorer: 'rules', data: file, baseUrl: 'http://127.0.0.1:9/v1', model: 'm', outDir: join(dir, 'out') }), /\["S"\]\[1\]: field "answer_idx": "C" is not one of the option letters/);
  assert.ok(!existsSync(join(dir, 'out', 'results.jsonl')));
});
