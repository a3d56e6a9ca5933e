// The eval.sglang job run the way the supervisor runs it: `node --import tsx jobs/main.ts SPEC`
// in a child process, speaking the JSON-lines protocol. Once against a running server (the
// built-in one with the scripted stand-in model, see scripted-backend.ts), once serving a
// tiny random engine checkpoint itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobMessage } from '../../contract/protocol.ts';
import { runJobProcess } from '../helpers/job-process.ts';
import { startServer } from '../../evaluation/server.ts';
import { readResults } from '../../evaluation/results.ts';
import { scriptedBackend } from './scripted-backend.ts';
import { tinyModel } from './tiny-model.ts';

const ROOT = join(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'samples/eval-format-sample.json');

async function runJob(params: Record<string, unknown>, outDir: string): Promise<{ code: number | null; messages: JobMessage[] }> {
  return runJobProcess({ kind: 'eval.sglang', runId: 'r1', stepId: 'eval', params, outDir, attempt: 1 });
}

const outDir = () => {
  const base = mkdtempSync(join(tmpdir(), 'eval-job-'));
  return join(base, 'step');
};
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

test('against a running server: progress per item, metrics, outputs; a rerun resumes without asking again', async () => {
  const backend = scriptedBackend(() => '## Thinking\n\nHmm.\n\n## Final Response\n\nThe answer is B.');
  const server = await startServer({ backend });
  closers.push(() => server.close(1000));
  const out = outDir();
  const params = { server: { base_url: `${server.url}/v1`, model: 'scripted' }, api: 'chat', data: SAMPLE, limit_per_source: 3, concurrency: 4, seed: 1 };
  const { code, messages } = await runJob(params, out);
  assert.equal(code, 0, JSON.stringify(messages.filter((m) => m.type === 'error')));
  const progress = messages.filter((m) => m.type === 'progress');
  assert.equal(progress.length, 16, 'one at the start, then one per item');
  assert.equal(progress.at(-1)!.type === 'progress' && progress.at(-1)!.current, 15);
  const result = messages.find((m) => m.type === 'result') as Extract<JobMessage, { type: 'result' }>;
  const raw = JSON.parse(readFileSync(SAMPLE, 'utf8')) as Record<string, { answer_idx: string }[]>;
  const perSource = Object.values(raw).map((items) => items.slice(0, 3).filter((i) => i.answer_idx === 'B').length / 3);
  const expected = perSource.reduce((a, b) => a + b, 0) / perSource.length;
  assert.equal(result.outputs.accuracy, expected);
  assert.equal(result.outputs.results, join(out, 'results.jsonl'));
  assert.equal(result.outputs.report, join(out, 'report.html'));
  assert.ok(readFileSync(join(out, 'report.html'), 'utf8').includes('<svg'));
  const metric = messages.find((m) => m.type === 'metric') as Extract<JobMessage, { type: 'metric' }>;
  assert.equal(metric.values.accuracy, expected);
  assert.equal(metric.values['accuracy/MedMCQA_validation'], perSource[0]);
  assert.equal(server.scheduler.stats.completed, 15);

  assert.ok(!readFileSync(join(out, 'report.html'), 'utf8').includes('accuracy-over-time'));

  // The same step again (a retry): everything is in results.jsonl, nothing is asked.
  // This time earlier reports (as nightly runs leave them) are given for the chart over time.
  const hist = mkdtempSync(join(tmpdir(), 'eval-history-'));
  const earlier = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  earlier.timing.finished_at = '2026-01-01T00:00:00.000Z';
  mkdirSync(join(hist, 'night-1'));
  writeFileSync(join(hist, 'night-1', 'report.json'), JSON.stringify(earlier));
  const again = await runJob({ ...params, history: join(hist, '*', 'report.json') }, out);
  assert.equal(again.code, 0);
  assert.equal(server.scheduler.stats.completed, 15);
  assert.equal((again.messages.find((m) => m.type === 'result') as any).outputs.accuracy, expected);
  assert.equal(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).counts.resumed, 15);
  assert.ok(readFileSync(join(out, 'report.html'), 'utf8').includes('id="accuracy-over-time"'));
});

test('with a checkpoint folder: serves it with the engine on 127.0.0.1 for the step', async () => {
  const model = await tinyModel(3);
  const out = outDir();
  const { code, messages } = await runJob({ model, data: SAMPLE, limit_per_source: 1, max_new_tokens: 6, concurrency: 5 }, out);
  assert.equal(code, 0, JSON.stringify(messages.filter((m) => m.type === 'error')));
  const result = messages.find((m) => m.type === 'result') as Extract<JobMessage, { type: 'result' }>;
  assert.equal(typeof result.outputs.accuracy, 'number');
  const rows = readResults(join(out, 'results.jsonl'));
  assert.equal(rows.length, 5);
  assert.ok(rows.every((r) => r.completion_tokens >= 1 && r.completion_tokens <= 6 && r.prompt_tokens > 50));
  assert.ok(messages.some((m) => m.type === 'log' && /serving .* at http:\/\/127\.0\.0\.1:\d+/.test(m.message)));
  assert.ok(existsSync(join(out, 'report.html')));
});

test('bad params and a missing model folder are user errors that say where', async () => {
  const out = outDir();
  const bad = await runJob({ data: SAMPLE }, out);
  assert.equal(bad.code, 2);
  const err = bad.messages.find((m) => m.type === 'error') as Extract<JobMessage, { type: 'error' }>;
  assert.equal(err.user, true);
  assert.match(err.message, /exactly one of with\.model .* or with\.server/);
  const missing = await runJob({ model: '/nonexistent/model', data: SAMPLE }, out);
  const err2 = missing.messages.find((m) => m.type === 'error') as Extract<JobMessage, { type: 'error' }>;
  assert.equal(err2.user, true);
  assert.match(err2.message, /\/nonexistent\/model: not a model folder/);
});
