// The built-in server answering `logprobs` with `top_logprobs`, and the server-based model
// verifier running against it. The checkpoint is made here: a tiny random model whose
// tokenizer has "True" and "False" as whole tokens (as real chat tokenizers do), and whose
// output rows for them copy those of the two likeliest tokens after the judge prompt, so
// both are sure to be among the top alternatives.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '../../engine/tf.ts';
import { initBackend } from '../../engine/backend.ts';
import { parseConfig } from '../../engine/config.ts';
import { CausalLM } from '../../engine/model.ts';
import { loadModel, saveModel } from '../../engine/checkpoint.ts';
import { Tokenizer } from '../../engine/tokenizer.ts';
import { loadEngineBackend } from '../../evaluation/engine-backend.ts';
import { startServer } from '../../evaluation/server.ts';
import { ChatClient } from '../../data/chat-client.ts';
import { logprobScorer } from '../../data/verifiers.ts';
import { EngineScorer } from '../../data/verifier-engine.ts';
import { judgePrompt } from '../../data/prompts/verify.ts';
import { TOKENIZER } from '../evaluation/tiny-model.ts';

const TRUE = 1024;
const FALSE = 1025;
const SPECIAL = new Set([1021, 1022, 1023]);
const root = mkdtempSync(join(tmpdir(), 'verifier-serve-'));
after(() => rmSync(root, { recursive: true, force: true }));

const prompt = judgePrompt({ response: 'Parvovirus B19', reference: 'Parvovirus B19 infection', question: 'Cause of aplastic crisis?' });

/** The parity tokenizer plus "True" and "False" as added tokens 1024 and 1025. */
function tokenizerDir(): string {
  const dir = join(root, 'tokenizer');
  rmSync(dir, { recursive: true, force: true });
  const json = JSON.parse(readFileSync(join(TOKENIZER, 'tokenizer.json'), 'utf8'));
  for (const [id, content] of [[TRUE, 'True'], [FALSE, 'False']] as const) {
    json.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  copyFileSync(join(TOKENIZER, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  return dir;
}
/** Last-position logits of the judge prompt. */
function lastLogits(model: CausalLM, tok: Tokenizer): Float32Array {
  const ids = tok.encode(tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  const input = tf.tensor2d([ids], [1, ids.length], 'int32');
  const logits = model.forward(input, { lastOnly: true });
  input.dispose();
  const out = (logits.dataSync() as Float32Array).slice();
  logits.dispose();
  return out;
}

async function makeCheckpoint(): Promise<{ dir: string; t1: number; t2: number }> {
  await initBackend();
  const tokDir = tokenizerDir();
  const tok = Tokenizer.load(tokDir);
  assert.deepEqual(tok.encode('True', { addSpecialTokens: false }), [TRUE]);
  for (let seed = 1; ; seed++) {
    const config = parseConfig({
      model_type: 'qwen2', vocab_size: 1026, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048, tie_word_embeddings: false,
      initializer_range: 0.3, eos_token_id: 1023, pad_token_id: 1021,
    });
    const model = new CausalLM(config).initRandom(seed);
    const logits = lastLogits(model, tok);
    const order = [...Array(1021).keys()].sort((a, b) => logits[b] - logits[a]);
    const best = [...logits.keys()].reduce((a, b) => (logits[b] > logits[a] ? b : a));
    if (SPECIAL.has(best) || best === TRUE || best === FALSE) { model.dispose(); continue; } // greedy must not stop at once
    const [t1, t2] = order;
    const head = model.getWeight('lm_head.weight');
    const H = config.hidden_size;
    head.data.copyWithin(TRUE * H, t1 * H, (t1 + 1) * H);
    head.data.copyWithin(FALSE * H, t2 * H, (t2 + 1) * H);
    model.setWeights(new Map([['lm_head.weight', head]]));
    const dir = join(root, 'verifier');
    await saveModel(model, dir, { tokenizerDir: tokDir });
    model.dispose();
    return { dir, t1, t2 };
  }
}

const { dir, t1, t2 } = await makeCheckpoint();

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

test('chat completions answer top_logprobs: the likeliest tokens, log-softmax of model.forward', async () => {
  const backend = await loadEngineBackend(dir);
  const server = await startServer({ backend });
  const { model } = await loadModel(dir);
  const tok = Tokenizer.load(dir);
  try {
    const logits = lastLogits(model, tok);
    const lse = Math.log(logits.reduce((s, l) => s + Math.exp(l), 0));
    const messages = [{ role: 'user', content: prompt }];
    const { status, json } = await post(server.url, '/v1/chat/completions', { messages, logprobs: true, top_logprobs: 5, max_tokens: 2, temperature: 0 });
    assert.equal(status, 200, JSON.stringify(json));
    const content = json.choices[0].logprobs.content;
    assert.equal(content.length, 2);
    const first = content[0];
    assert.equal(first.token, tok.decode([t1], { skipSpecialTokens: true }));
    assert.equal(first.top_logprobs.length, 5);
    const lps = first.top_logprobs.map((t: any) => t.logprob);
    assert.deepEqual(lps, [...lps].sort((a: number, b: number) => b - a), 'most likely first');
    assert.ok(Math.abs(lps[0] - first.logprob) < 1e-6);
    const byToken = new Map<string, number>(first.top_logprobs.map((t: any) => [t.token, t.logprob]));
    for (const id of [TRUE, FALSE, t1, t2]) {
      const got = byToken.get(tok.decode([id]));
      assert.ok(got !== undefined && Math.abs(got - (logits[id] - lse)) < 1e-5, `token ${id}: ${got} vs ${logits[id] - lse}`);
    }
    assert.deepEqual(first.top_logprobs[0].bytes, [...Buffer.from(first.top_logprobs[0].token, 'utf8')]);
    // Without top_logprobs, the alternatives stay empty as before.
    const plain = await post(server.url, '/v1/chat/completions', { messages, logprobs: true, max_tokens: 1, temperature: 0 });
    assert.deepEqual(plain.json.choices[0].logprobs.content[0].top_logprobs, []);
    // Legacy completions: one {token: logprob} object per generated token.
    const c = await post(server.url, '/v1/completions', { prompt: 'Fever and rash', max_tokens: 3, logprobs: 4, temperature: 0 });
    assert.equal(c.status, 200);
    assert.equal(c.json.choices[0].logprobs.top_logprobs.length, c.json.choices[0].logprobs.tokens.length);
    assert.ok(c.json.choices[0].logprobs.top_logprobs.every((o: object) => Object.keys(o).length >= 1 && Object.keys(o).length <= 4));
    // Requests the server refuses, naming the field.
    const bad1 = await post(server.url, '/v1/chat/completions', { messages, top_logprobs: 3 });
    assert.deepEqual([bad1.status, bad1.json.error.param], [400, 'top_logprobs']);
    assert.match(bad1.json.error.message, /needs "logprobs": true/);
    const bad2 = await post(server.url, '/v1/chat/completions', { messages, logprobs: true, top_logprobs: 21 });
    assert.deepEqual([bad2.status, bad2.json.error.param], [400, 'top_logprobs']);
  } finally {
    model.dispose();
    await server.close();
    backend.close();
  }
});

test('the server-based model verifier against the built-in server agrees with the in-process scorer', async () => {
  const backend = await loadEngineBackend(dir);
  const server = await startServer({ backend });
  const scorer = await EngineScorer.load(dir);
  try {
    assert.deepEqual(scorer.answerIds, { true: [TRUE], false: [FALSE] }, 'a space before the word starts both spellings alike, so only the whole tokens count');
    const client = new ChatClient({ baseUrl: `${server.url}/v1`, model: 'verifier', initialBackoffMs: 10 });
    const viaServer = await logprobScorer(client)(prompt);
    const [inProcess] = scorer.scoreBatch([prompt]);
    assert.ok(viaServer > 0 && viaServer < 1, `P(True) ${viaServer}`);
    assert.ok(Math.abs(viaServer - inProcess) < 1e-5, `server ${viaServer} vs engine ${inProcess}`);
  } finally {
    scorer.close();
    await server.close();
    backend.close();
  }
});
