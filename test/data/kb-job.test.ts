// The data.knowledge_base job run the way the supervisor runs it: `node --import tsx jobs/main.ts SPEC`
// in a real child process speaking the JSON-lines protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobMessage } from '../../contract/protocol.ts';
import { runJobProcess } from '../helpers/job-process.ts';
import { EvalFile, McqItem, SftItem, VerifiableItem } from '../../data/formats.ts';
import { generateKb, serializeKb } from '../../data/kb/generate.ts';

async function runJob(params: Record<string, unknown>): Promise<{ code: number | null; messages: JobMessage[]; outDir: string }> {
  const outDir = join(mkdtempSync(join(tmpdir(), 'kb-job-')), 'step');
  mkdirSync(outDir);
  const { code, messages } = await runJobProcess({ kind: 'data.knowledge_base', runId: 'r1', stepId: 'kb', params, outDir, attempt: 1 });
  return { code, outDir, messages };
}

test('the job writes mcq, verifiable, sft and eval files, reports progress and artifacts, and returns their paths', async () => {
  const params = { seed: 5, train_size: 1200, eval_size: 40, cot_style: 'brief', specialties: ['cardiology', 'toxicology'] };
  const { code, messages, outDir } = await runJob(params);
  assert.equal(code, 0, JSON.stringify(messages.filter((m) => m.type === 'error')));

  const progress = messages.filter((m): m is Extract<JobMessage, { type: 'progress' }> => m.type === 'progress');
  assert.ok(progress.length >= 2, 'progress along the way');
  assert.deepEqual([progress.at(-1)!.current, progress.at(-1)!.total], [1280, 1280]);
  const artifacts = messages.filter((m) => m.type === 'artifact').map((m) => (m as { name: string }).name);
  assert.deepEqual(artifacts, ['mcq', 'verifiable', 'sft', 'eval']);
  const result = messages.find((m) => m.type === 'result') as Extract<JobMessage, { type: 'result' }>;
  const files = { mcq: 'mcq.json', verifiable: 'verifiable.json', sft: 'sft.json', eval: 'eval.json' };
  assert.deepEqual(result.outputs, Object.fromEntries(Object.entries(files).map(([k, f]) => [k, join(outDir, f)])));
  // Only the four files: no temporary files left behind by the atomic writes.
  assert.deepEqual(readdirSync(outDir).sort(), Object.values(files).sort());

  const read = (name: keyof typeof files) => readFileSync(join(outDir, files[name]), 'utf8');
  const mcq = JSON.parse(read('mcq')) as unknown[];
  assert.equal(mcq.length, 1200);
  mcq.forEach((m) => McqItem.parse(m));
  (JSON.parse(read('verifiable')) as unknown[]).forEach((v) => VerifiableItem.parse(v));
  (JSON.parse(read('sft')) as unknown[]).forEach((s) => SftItem.parse(s));
  const ev = EvalFile.parse(JSON.parse(read('eval')));
  assert.deepEqual(Object.values(ev).map((l) => l.length), [40, 40]);

  // The child's files are exactly what the generator makes in-process for the same parameters.
  const expected = serializeKb(generateKb({ seed: 5, trainSize: 1200, evalSize: 40, cotStyle: 'brief', specialties: ['cardiology', 'toxicology'] }));
  for (const k of Object.keys(files) as (keyof typeof files)[]) assert.equal(read(k), expected[k], `${k} differs`);
});

test('bad parameters fail as user errors that say where and what to do, and write nothing', async () => {
  const unknown = await runJob({ specialties: ['astrology'] });
  assert.equal(unknown.code, 2);
  const err = unknown.messages.find((m) => m.type === 'error') as Extract<JobMessage, { type: 'error' }>;
  assert.equal(err.user, true);
  assert.match(err.message, /unknown specialties: astrology/);
  assert.match(err.where ?? '', /step kb, with\.specialties/);
  assert.match(err.hint ?? '', /choose from: cardiology/);
  assert.deepEqual(readdirSync(unknown.outDir), []);

  const badSize = await runJob({ train_size: 'many' });
  assert.equal(badSize.code, 2);
  const e2 = badSize.messages.find((m) => m.type === 'error') as Extract<JobMessage, { type: 'error' }>;
  assert.match(e2.message, /^with\.train_size: /);
  assert.equal(e2.where, 'with.train_size');
  assert.deepEqual(readdirSync(badSize.outDir), []);
});
