// A keyed server and its clients: `doctor-agent serve` reads the key from --api-key or
// DOCTOR_AGENT_API_KEY, and `doctor-agent eval --base-url` and the evaluation client send it.
// Real processes and HTTP on 127.0.0.1, with a tiny random engine checkpoint (tiny-model.ts)
// for the command line and the scripted stand-in (scripted-backend.ts) for the client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withServe } from '../helpers/serve-process.ts';
import { tinyModel } from './tiny-model.ts';
import { scriptedBackend } from './scripted-backend.ts';
import { startServer } from '../../evaluation/server.ts';
import { runEval } from '../../evaluation/client.ts';
import { evaluate, type EvalArgs } from '../../cli/commands/eval.ts';
import { exposureWarning } from '../../cli/commands/serve.ts';

const ROOT = join(import.meta.dirname, '../..');
const SAMPLE = join(ROOT, 'samples/eval-format-sample.json');
const tmp = () => join(mkdtempSync(join(tmpdir(), 'serve-auth-')), 'out');
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers) await c();
});

test('serving beyond loopback without a key is warned about', () => {
  assert.match(exposureWarning('0.0.0.0', undefined) ?? '', /serving on 0\.0\.0\.0 without an API key.*--api-key or DOCTOR_AGENT_API_KEY/);
  assert.match(exposureWarning('192.168.1.10', '') ?? '', /without an API key/);
  assert.match(exposureWarning('::', undefined) ?? '', /without an API key/);
  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]']) assert.equal(exposureWarning(host, undefined), undefined, host);
  assert.equal(exposureWarning('0.0.0.0', 'k'), undefined);
});

test('the evaluation client sends its API key to a keyed server', async () => {
  const backend = scriptedBackend(() => '## Final Response\n\nThe answer is A.');
  const server = await startServer({ backend, apiKey: 'k-123' });
  closers.push(() => server.close(1000));
  await assert.rejects(runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: `${server.url}/v1`, model: 'scripted', outDir: tmp(), limitPerSource: 1 }), /HTTP 401/);
  const report = await runEval({ api: 'chat', scorer: 'rules', data: SAMPLE, baseUrl: `${server.url}/v1`, model: 'scripted', apiKey: 'k-123', outDir: tmp(), limitPerSource: 1 });
  assert.equal(report.counts.items, 5);
  assert.equal(report.counts.failed ?? 0, 0);
  assert.equal(server.scheduler.stats.completed, 5);
});

test('doctor-agent serve takes its key from DOCTOR_AGENT_API_KEY; eval --base-url sends it from --api-key or the same variable', { timeout: 120_000 }, async () => {
  const model = await tinyModel(12);
  const env = { ...process.env, DOCTOR_AGENT_API_KEY: 'env-key-42' };
  await withServe(['--model', model, '--port', '0', '--max-batch', '4'], /serving .* at (http:\/\/127\.0\.0\.1:\d+) .*API key required/, async (url) => {
    assert.equal((await fetch(`${url}/health`)).status, 200);
    assert.equal((await fetch(`${url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer env-key-42' } })).status, 200);

    const args = (out: string): EvalArgs => ({
      data: SAMPLE, baseUrl: `${url}/v1`, modelName: 'tiny', out, strict: false, limit: 1, temperature: 0, topP: 1,
      maxTokens: 2, concurrency: 4, seed: 0, policy: 'last', retries: 0, api: 'chat',
    });
    const byFlag = tmp();
    const r1 = await evaluate({ ...args(byFlag), apiKey: 'env-key-42' });
    assert.equal(r1.counts.items, 5);
    assert.equal(r1.counts.failed ?? 0, 0);
    assert.ok(existsSync(join(byFlag, 'report.html')));
    const saved = process.env.DOCTOR_AGENT_API_KEY;
    process.env.DOCTOR_AGENT_API_KEY = 'env-key-42';
    try {
      const r2 = await evaluate(args(tmp()));
      assert.equal(r2.counts.failed ?? 0, 0);
      assert.equal(r2.counts.items, 5);
    } finally {
      if (saved === undefined) delete process.env.DOCTOR_AGENT_API_KEY;
      else process.env.DOCTOR_AGENT_API_KEY = saved;
    }
  }, env);
});
