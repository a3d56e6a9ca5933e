// Items whose request the server refuses are recorded as those items' failures and the run
// finishes; failures that are not an item's stop it with a clear message. Real HTTP on
// 127.0.0.1: the built-in server with the scripted stand-in model (byte tokens, so prompt
// lengths are known exactly: see scripted-backend.ts), small scripted servers that refuse
// on purpose, and the real CLI and eval.sglang job serving a tiny engine checkpoint whose
// context is shorter than some sample prompts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runEval, evalItems, type EvalReport } from '../../evaluation/client.ts';
import { readResults } from '../../evaluation/results.ts';
import { renderReportHtml } from '../../evaluation/report.ts';
import { mcqMessages } from '../../evaluation/prompts.ts';
import { startServer } from '../../evaluation/server.ts';
import { DENOMINATOR, scoreResponse } from '../../evaluation/scorer.ts';
import { readJsonFile } from '../../common/fs.ts';
import type { JobMessage } from '../../contract/protocol.ts';
import { runJobProcess } from '../helpers/job-process.ts';
import { scriptedBackend } from './scripted-backend.ts';
import { tinyModel } from './tiny-model.ts';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/doctor-agent.js');
const SAMPLE = join(ROOT, 'samples/eval-format-sample.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'eval-fail-'));
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

// Every answer is 120 bytes of thinking, then "The answer is A.": 154 tokens in all.
const ANSWER = `## Thinking\n\n${'x'.repeat(120)}\n\n## Final Response\n\nThe answer is A.`;
const CONTEXT = 700;

test('prompts longer than the context are recorded per item and counted per source; the run finishes', async () => {
  const backend = scriptedBackend(() => ANSWER, { contextLength: CONTEXT });
  const server = await startServer({ backend, maxBatch: 8 });
  closers.push(() => server.close(1000));
  const out = tmp();
  // max_tokens 2048 is more than any prompt leaves of the 700-token context.
  const report = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: `${server.url}/v1`, model: 'scripted', outDir: out, maxTokens: 2048, concurrency: 8 });

  // What each item should give, from the prompt's length alone.
  const expected = evalItems(SAMPLE).map((e) => {
    const promptTokens = backend.encodeChat(mcqMessages(e.item, false)).length;
    return { ...e, promptTokens, tooLong: promptTokens >= CONTEXT, room: CONTEXT - promptTokens };
  });
  const tooLong = expected.filter((e) => e.tooLong);
  const clipped = expected.filter((e) => !e.tooLong && e.room < ANSWER.length);
  const whole = expected.filter((e) => !e.tooLong && e.room >= ANSWER.length);
  assert.ok(tooLong.length >= 5 && clipped.length >= 1 && whole.length >= 5, `the sample has all three kinds (${tooLong.length}, ${clipped.length}, ${whole.length})`);

  const rows = new Map(readResults(join(out, 'results.jsonl')).map((r) => [r.id, r]));
  assert.equal(rows.size, 30);
  for (const e of tooLong) {
    const r = rows.get(e.id)!;
    assert.equal(r.error, 'prompt_too_long', e.id);
    assert.equal(r.prompt_tokens, e.promptTokens, e.id);
    assert.equal(r.context_length, CONTEXT, e.id);
    assert.match(r.error_message!, new RegExp(`the prompt has ${e.promptTokens} tokens but the model's context is ${CONTEXT}`));
    assert.equal(r.output, '');
    assert.equal(r.correct, false);
    assert.equal(r.last, null);
  }
  // The new-token cap is clipped to what the context leaves: the answer ends with "length".
  for (const e of clipped) {
    const r = rows.get(e.id)!;
    assert.equal(r.error, undefined, e.id);
    assert.equal(r.finish_reason, 'length', e.id);
    assert.equal(r.completion_tokens, e.room, e.id);
    assert.equal(r.output, ANSWER.slice(0, e.room));
  }
  for (const e of whole) {
    const r = rows.get(e.id)!;
    assert.equal(r.finish_reason, 'stop', e.id);
    assert.equal(r.output, ANSWER);
    assert.equal(r.last, 'A');
  }

  // report.json: failures per source next to the accuracy, which counts them as not answered.
  assert.deepEqual(readJsonFile(join(out, 'report.json')), JSON.parse(JSON.stringify(report)));
  assert.equal(report.accuracy.denominator, DENOMINATOR);
  assert.equal(report.counts.failed, tooLong.length);
  assert.equal(report.counts.prompt_too_long, tooLong.length);
  assert.equal(report.accuracy.failed, tooLong.length);
  for (const [source, s] of Object.entries(report.accuracy.sources)) {
    const mine = expected.filter((e) => e.source === source);
    const failed = mine.filter((e) => e.tooLong).length;
    // Scored on what each answered item's output should be (the whole answer, or its clipped start).
    const correct = mine.filter((e) => !e.tooLong && scoreResponse(ANSWER.slice(0, e.room), e.item).correct_last).length;
    assert.equal(s.n, 6, source);
    assert.equal(s.failed, failed, source);
    assert.equal(s.prompt_too_long, failed, source);
    assert.equal(s.answered, 6 - failed, source);
    assert.equal(s.accuracy, correct / 6, source);
    assert.equal(s.accuracy_answered, failed === 6 ? 0 : correct / (6 - failed), source);
  }

  // report.html shows them.
  const html = await renderReportHtml(report);
  assert.match(html, new RegExp(`${tooLong.length} of 30 item\\(s\\) failed</strong> \\(${tooLong.length} with a prompt longer than the model's context`));
  assert.match(html, /<th>failed<\/th><th>prompt too long<\/th>/);
  const pubmed = report.accuracy.sources.PubMedQA_test;
  assert.ok(html.includes(`<td>PubMedQA_test</td><td>6</td><td>${pubmed.failed}</td><td>${pubmed.prompt_too_long}</td>`));

  // A rerun asks nothing again: failures are results too.
  const before = server.scheduler.stats.completed;
  const again = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: `${server.url}/v1`, model: 'scripted', outDir: out, maxTokens: 2048 });
  assert.equal(again.counts.resumed, 30);
  assert.equal(again.counts.failed, tooLong.length);
  assert.equal(server.scheduler.stats.completed, before);
});

/** An OpenAI-style server whose `reply(body)` gives [status, body]; counts requests. */
async function scriptedServer(reply: (body: any) => [number, unknown]) {
  let requests = 0;
  const server: Server = createServer(async (req, res) => {
    let text = '';
    for await (const c of req) text += c;
    requests++;
    const [status, out] = reply(JSON.parse(text));
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, requests: () => requests };
}
const ok = (content: string) => ({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: 5 } });
const fast = { maxRetries: 2, initialBackoffMs: 1, maxBackoffMs: 5 };
const isGene = (body: any) => body.messages[0].content.includes('A large gene');

test('a 400 about one prompt is that item\'s failure; other servers\' context messages are understood', async () => {
  const s = await scriptedServer((body) => {
    if (isGene(body)) return [400, { error: { message: 'messages: contains a character the tokenizer refuses', type: 'invalid_request_error', param: 'messages', code: 400 } }];
    // vLLM's wording when the prompt alone is over the context.
    if (body.messages[0].content.includes('myelinated')) {
      return [400, { object: 'error', message: "This model's maximum context length is 512 tokens. However, you requested 2574 tokens (526 in the messages, 2048 in the completion). Please reduce the length of the messages or completion.", type: 'BadRequestError', code: 400 }];
    }
    return [200, ok('The answer is B.')];
  });
  const out = tmp();
  const report = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 1, http: fast });
  const rows = new Map(readResults(join(out, 'results.jsonl')).map((r) => [r.id, r]));
  assert.equal(rows.get('GPQA_Medical_test/0')!.error, 'rejected');
  assert.equal(rows.get('GPQA_Medical_test/0')!.error_message, 'messages: contains a character the tokenizer refuses');
  const long = rows.get('MedMCQA_validation/0')!;
  assert.equal(long.error, 'prompt_too_long');
  assert.equal(long.prompt_tokens, 526);
  assert.equal(long.context_length, 512);
  assert.equal(report.counts.failed, 2);
  assert.equal(report.counts.prompt_too_long, 1);
  assert.equal(report.accuracy.sources.GPQA_Medical_test.failed, 1);
  assert.equal(report.accuracy.sources.GPQA_Medical_test.prompt_too_long, 0);
  assert.equal(s.requests(), 5, '4xx are not retried');
});

test('a 400 about the request\'s settings, or a server that cannot be reached, stops the run with a clear message', async () => {
  const s = await scriptedServer(() => [400, { error: { message: 'temperature: expected number <= 2', type: 'invalid_request_error', param: 'temperature', code: 400 } }]);
  const out = tmp();
  await assert.rejects(runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: s.url, model: 'm', outDir: out, limitPerSource: 1, concurrency: 1, http: fast }), (err: Error) => {
    assert.equal(err.name, 'EvalRunError');
    assert.match(err.message, /the server at http:\/\/127\.0\.0\.1:\d+\/v1 refused a request \(HTTP 400: .*temperature: expected number <= 2/);
    assert.match(err.message, /5 of 5 item\(s\) have no result yet/);
    return true;
  });
  assert.equal(s.requests(), 1, 'the first refusal stops the requests still waiting');

  // A port nothing listens on: retried, then the run stops, without asking every item.
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const port = (free.address() as AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  await assert.rejects(runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: `http://127.0.0.1:${port}/v1`, model: 'm', outDir: tmp(), concurrency: 2, http: fast }), (err: Error) => {
    assert.equal(err.name, 'EvalRunError');
    assert.match(err.message, new RegExp(`the server at http://127\\.0\\.0\\.1:${port}/v1 kept failing after 2 retries \\(network error: fetch failed \\(ECONNREFUSED\\)\\): check that it is running`));
    assert.match(err.message, /30 of 30 item\(s\) have no result yet; the 0 result\(s\) so far are kept in .*results\.jsonl: run again/);
    return true;
  });
});

test('eval CLI and eval.sglang job on a checkpoint whose context is shorter than some prompts: they finish', async () => {
  // 256 positions: with --limit 2, six of the ten sample prompts do not fit.
  const model = await tinyModel(5, { context: 256 });
  const out = join(tmp(), 'out');
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [
    BIN, 'eval', '--data', SAMPLE, '--model', model, '--limit', '2', '--max-tokens', '64', '--out', out,
  ], { cwd: ROOT });
  assert.match(stderr, /6 item\(s\) failed \(6 with a prompt longer than the model's context\): counted as not answered/);
  assert.match(stdout, /^PubMedQA_test +2 +0\.0% +\(2 failed, 2 prompt too long\)$/m);
  assert.match(stdout, /^average +10 /m);
  const report = readJsonFile<EvalReport>(join(out, 'report.json'));
  assert.equal(report.counts.prompt_too_long, 6);
  const rows = readResults(join(out, 'results.jsonl'));
  const failed = rows.filter((r) => r.error);
  assert.equal(failed.length, 6);
  assert.ok(failed.every((r) => r.error === 'prompt_too_long' && r.prompt_tokens >= 256 && r.context_length === 256));
  // The answered ones fit: prompt plus answer never exceed the context; a long one stops at "length".
  assert.ok(rows.filter((r) => !r.error).every((r) => r.prompt_tokens + r.completion_tokens <= 256 && r.completion_tokens >= 1));
  assert.ok(readFileSync(join(out, 'report.html'), 'utf8').includes('6 of 10 item(s) failed'));

  const stepOut = join(tmp(), 'step');
  const { code, messages } = await runJobProcess({
    kind: 'eval.sglang', runId: 'r1', stepId: 'eval', outDir: stepOut, attempt: 1,
    params: { model, data: SAMPLE, limit_per_source: 2, concurrency: 4 },
  });
  assert.equal(code, 0, JSON.stringify(messages.filter((m) => m.type === 'error')));
  const warn = messages.find((m) => m.type === 'log' && m.level === 'warn') as Extract<JobMessage, { type: 'log' }> | undefined;
  assert.match(warn?.message ?? '', /6 item\(s\) failed \(6 with a prompt longer than the model's context\)/);
  const metric = messages.find((m) => m.type === 'metric') as Extract<JobMessage, { type: 'metric' }>;
  assert.equal(metric.values.failed, 6);
  assert.ok(messages.some((m) => m.type === 'progress' && /PubMedQA_test\/0: failed: prompt too long/.test(m.message ?? '')));
});
