// The name a checkpoint is served under: chosen with `doctor-agent serve --served-model-name`
// (as vLLM's flag) or the eval.sglang step's served_model_name, by default RUN/STEP for a
// checkpoint a step wrote in the artifact store. Real processes on 127.0.0.1, a tiny random
// engine checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { JobMessage } from '../../contract/protocol.ts';
import { defaultServedName } from '../../evaluation/engine-backend.ts';
import { getKind } from '../../dsl/kinds/index.ts';
import { runJobProcess } from '../helpers/job-process.ts';
import { withServe } from '../helpers/serve-process.ts';
import { tinyModel } from './tiny-model.ts';

const ROOT = join(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'samples/eval-format-sample.json');

/** A tiny checkpoint copied to where a step of run `run` would have written it in the artifact store. */
async function storedCheckpoint(run: string, step: string): Promise<string> {
  const model = await tinyModel(5);
  const dir = join(mkdtempSync(join(tmpdir(), 'served-name-')), '.doctor-agent', 'runs', run, 'steps', step, 'checkpoint');
  mkdirSync(dir, { recursive: true });
  cpSync(model, dir, { recursive: true });
  return dir;
}

test('default served name: RUN/STEP for a checkpoint in the artifact store, else the folder name', () => {
  assert.equal(defaultServedName('/home/u/.doctor-agent/runs/huatuo-tiny-20260101-0200/steps/sft/checkpoint'), 'huatuo-tiny-20260101-0200/sft');
  assert.equal(defaultServedName('/data/store/runs/r1/steps/grpo/checkpoints/step-40'), 'r1/grpo');
  assert.equal(defaultServedName('/models/Qwen2.5-0.5B-Instruct'), 'Qwen2.5-0.5B-Instruct');
  assert.equal(defaultServedName('/models/runs/x'), 'x');
});

test('eval.sglang: served_model_name needs with.model', () => {
  const params = getKind('eval.sglang')!.params;
  assert.equal(params.parse({ model: 'm', data: 'd', served_model_name: 'exp-1' }).served_model_name, 'exp-1');
  const r = params.safeParse({ server: { base_url: 'http://127.0.0.1:1/v1', model: 'x' }, api: 'chat', data: 'd', served_model_name: 'exp-1' });
  assert.equal(r.success, false);
  assert.match(JSON.stringify(r.error!.issues), /served_model_name names the checkpoint the step serves/);
});

test('doctor-agent serve --served-model-name: /v1/models reports it, "default" is accepted, another name is a 404', async () => {
  const model = await storedCheckpoint('nightly-1', 'sft');
  await withServe(['--model', model, '--port', '0', '--served-model-name', 'medic-v2', 'medic'], /serving .* as "medic-v2", "medic" at (http:\/\/127\.0\.0\.1:\d+)/, async (url) => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    assert.deepEqual((await client.models.list()).data.map((m) => m.id), ['medic-v2', 'medic']);
    const r = await client.completions.create({ model: 'default', prompt: 'Fever', max_tokens: 2, temperature: 0 });
    assert.equal(r.model, 'medic-v2');
    await assert.rejects(client.completions.create({ model: 'checkpoint', prompt: 'Fever', max_tokens: 2 }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  });
});

test('the eval.sglang step serves a stored checkpoint as RUN/STEP, or as its served_model_name', async () => {
  const model = await storedCheckpoint('huatuo-tiny-7', 'grpo');
  const run = async (extra: Record<string, unknown>) => {
    const out = join(mkdtempSync(join(tmpdir(), 'served-name-eval-')), 'step');
    const params = { model, data: SAMPLE, api: 'chat', limit_per_source: 1, max_new_tokens: 2, concurrency: 5, ...extra };
    const { code, messages } = await runJobProcess({ kind: 'eval.sglang', runId: 'r1', stepId: 'eval', params, outDir: out, attempt: 1 });
    assert.equal(code, 0, JSON.stringify(messages.filter((m: JobMessage) => m.type === 'error')));
    return messages.filter((m): m is Extract<JobMessage, { type: 'log' }> => m.type === 'log').map((m) => m.message).join('\n');
  };
  assert.match(await run({}), /serving .* as "huatuo-tiny-7\/grpo" at http:\/\/127\.0\.0\.1/);
  assert.match(await run({ served_model_name: 'grpo-candidate' }), /serving .* as "grpo-candidate" at http:\/\/127\.0\.0\.1/);
});
