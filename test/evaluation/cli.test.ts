// `doctor-agent serve` and `doctor-agent eval` as a user runs them: two processes
// talking over real HTTP on 127.0.0.1, with a tiny random engine checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { withServe } from '../helpers/serve-process.ts';
import { tinyModel } from './tiny-model.ts';
import { evaluate } from '../../cli/commands/eval.ts';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/doctor-agent.js');
const SAMPLE = join(ROOT, 'samples/eval-format-sample.json');

test('serve a checkpoint, evaluate it from another process, stop it with SIGTERM', async () => {
  const model = await tinyModel(11);
  await withServe(['--model', model, '--port', '0', '--max-batch', '4'], /serving .* at (http:\/\/127\.0\.0\.1:\d+)/, async (url) => {
    const info = await (await fetch(`${url}/v1/models`)).json();
    assert.equal(info.data[0].id, 'tiny');
    const out = join(mkdtempSync(join(tmpdir(), 'eval-cli-')), 'out');
    const { stdout } = await promisify(execFile)(process.execPath, [
      BIN, 'eval', '--data', SAMPLE, '--base-url', `${url}/v1`, '--model-name', 'tiny', '--tokenizer', model, '--limit', '1', '--max-tokens', '4', '--out', out,
    ], { cwd: ROOT });
    // The default request: /v1/completions with the prompt rendered through the model's chat template.
    const first = JSON.parse(readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n')[0]);
    assert.ok(first.prompt.startsWith('<|im_start|>user\nPlease answer the following multiple-choice question:\n'), first.prompt);
    assert.ok(first.prompt.endsWith('<|im_end|>\n<|im_start|>assistant\n'), first.prompt);
    assert.equal(first.scorer, 'huatuo');
    assert.ok(first.prompt_tokens > 0);
    assert.match(stdout, /^MedMCQA_validation +1 +\d+\.\d%$/m);
    assert.match(stdout, /^average +5 +\d+\.\d%/m);
    assert.equal(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 5);
    assert.ok(existsSync(join(out, 'report.html')));
  });
});

test('eval refuses ambiguous targets and says what to give', async () => {
  const out = mkdtempSync(join(tmpdir(), 'eval-cli-'));
  await assert.rejects(evaluate({ data: SAMPLE, model: 'm', baseUrl: 'http://x/v1', out } as never), /either --model DIR .* or --base-url URL with --model-name/);
  await assert.rejects(evaluate({ data: SAMPLE, baseUrl: 'http://x/v1', out } as never), /--base-url needs --model-name/);
  await assert.rejects(evaluate({ data: 'nope.json', baseUrl: 'http://x/v1', modelName: 'm', out } as never), /nope\.json: evaluation file not found/);
});
