// The server over real HTTP on 127.0.0.1, with the scripted stand-in model (see
// scripted-backend.ts for why): API shapes, 400s that name the field, batching, stop strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rowSeed } from '../../engine/generate.ts';
import { startServer, type ServerOptions } from '../../evaluation/server.ts';
import { closingServers, until } from '../helpers/eval-server.ts';
import { scriptedBackend } from './scripted-backend.ts';

// The stand-in answers with the text after "SAY:" in the last message (or a default),
// prefixed by the seed when the temperature is above 0, so seed plumbing is visible.
const backend = scriptedBackend((prompt, s) => {
  const said = /SAY:([^\n]*)/.exec(prompt.split('<|user|>').pop() ?? '')?.[1] ?? 'Hello.';
  return s.temperature > 0 ? `[${s.seed}] ${said}` : said;
}, { contextLength: 512, stepDelayMs: 1 });

const start = closingServers();
const serve = (opts: Partial<ServerOptions> = {}) => start({ backend, admitWaitMs: 10, ...opts });

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content }], temperature: 0, ...extra });

test('chat completion: OpenAI shape, usage counts, logprobs', async () => {
  const s = await serve();
  assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const { status, json } = await post(s.url, '/v1/chat/completions', chat('SAY:The answer is B.', { logprobs: true }));
  assert.equal(status, 200);
  assert.equal(json.object, 'chat.completion');
  assert.equal(json.choices[0].message.role, 'assistant');
  assert.equal(json.choices[0].message.content, 'The answer is B.');
  assert.equal(json.choices[0].finish_reason, 'stop');
  const promptTokens = backend.encodeChat([{ role: 'user', content: 'SAY:The answer is B.' }]).length;
  assert.deepEqual(json.usage, { prompt_tokens: promptTokens, completion_tokens: 16, total_tokens: promptTokens + 16 });
  assert.equal(json.choices[0].logprobs.content.length, 16);
  assert.equal(json.choices[0].logprobs.content.map((t: any) => t.token).join(''), 'The answer is B.');
  // Array-of-parts content is accepted too.
  const parts = await post(s.url, '/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'text', text: 'SAY:ok' }] }], temperature: 0 });
  assert.equal(parts.json.choices[0].message.content, 'ok');
});

test('max_tokens ends with finish_reason "length"; seeds reach the backend, as the stream of choice 0', async () => {
  const s = await serve();
  const { json } = await post(s.url, '/v1/chat/completions', chat('SAY:abcdefghij', { max_tokens: 4 }));
  assert.equal(json.choices[0].message.content, 'abcd');
  assert.equal(json.choices[0].finish_reason, 'length');
  const a = await post(s.url, '/v1/chat/completions', chat('SAY:x', { temperature: 0.5, seed: 41 }));
  assert.equal(a.json.choices[0].message.content, `[${rowSeed(41, 0)}] x`);
});

test('max_tokens past what the context leaves is capped to the room left (finish_reason "length"), not refused', async () => {
  const s = await serve();
  const content = 'SAY:' + 'y'.repeat(470);
  const promptTokens = backend.encodeChat([{ role: 'user', content }]).length;
  const room = 512 - promptTokens;
  assert.ok(room > 0 && room < 1000, `room ${room}`);
  const { status, json } = await post(s.url, '/v1/chat/completions', chat(content, { max_tokens: 1000 }));
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.choices[0].finish_reason, 'length');
  assert.equal(json.usage.completion_tokens, room);
  assert.equal(json.choices[0].message.content, 'y'.repeat(room));
});

test('stop strings cut the text before the stop and report it', async () => {
  const s = await serve();
  const { json } = await post(s.url, '/v1/chat/completions', chat('SAY:Think first. ## Final Response The answer is C.', { stop: ['## Final', 'never'] }));
  assert.equal(json.choices[0].message.content, 'Think first. ');
  assert.equal(json.choices[0].finish_reason, 'stop');
  assert.equal(json.choices[0].matched_stop, '## Final');
  assert.equal(json.usage.completion_tokens, 'Think first. '.length);
  const gen = await post(s.url, '/generate', { text: '<|user|>\nSAY:one. two. three.', sampling_params: { temperature: 0, stop: 'two' } });
  assert.equal(gen.json.text, 'one. ');
  assert.deepEqual(gen.json.meta_info.finish_reason, { type: 'stop', matched: 'two' });
});

test('/v1/completions and SGLang /generate (text, input_ids, batches, logprobs)', async () => {
  const s = await serve();
  const c = await post(s.url, '/v1/completions', { prompt: '<|user|>\nSAY:hi there', temperature: 0, max_tokens: 5, logprobs: 0 });
  assert.equal(c.status, 200);
  assert.equal(c.json.object, 'text_completion');
  assert.equal(c.json.choices[0].text, 'hi th');
  assert.equal(c.json.choices[0].logprobs.tokens.length, 5);
  const g = await post(s.url, '/generate', { text: ['<|user|>\nSAY:one', '<|user|>\nSAY:two'], sampling_params: { temperature: 0, max_new_tokens: 64 }, return_logprob: true });
  assert.deepEqual(g.json.map((r: any) => r.text), ['one', 'two']);
  assert.equal(g.json[0].meta_info.output_token_logprobs.length, 3);
  assert.equal(g.json[0].meta_info.output_token_logprobs[0][1], 'o'.charCodeAt(0));
  const ids = await post(s.url, '/generate', { input_ids: backend.encode('<|user|>\nSAY:ids'), sampling_params: { temperature: 0, max_new_tokens: 2 } });
  assert.equal(ids.json.text, 'id');
  assert.deepEqual(ids.json.output_ids, [105, 100]);
  assert.deepEqual(ids.json.meta_info.finish_reason, { type: 'length', length: 2 });
});

test('GET /v1/models, /health, /get_model_info', async () => {
  const s = await serve();
  const models = await (await fetch(`${s.url}/v1/models`)).json();
  assert.equal(models.data[0].id, 'scripted');
  assert.equal(models.data[0].max_model_len, 512);
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  const info = await (await fetch(`${s.url}/get_model_info`)).json();
  assert.equal(info.is_generation, true);
});

test('bad requests get a 400 naming the field and what is expected', async () => {
  const s = await serve();
  const cases: [string, unknown, string, RegExp][] = [
    ['/v1/chat/completions', {}, 'messages', /expected array/],
    ['/v1/chat/completions', { messages: [] }, 'messages', /at least one message/],
    ['/v1/chat/completions', { messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role', /expected one of/],
    ['/v1/chat/completions', chat('x', { temperature: 'hot' }), 'temperature', /expected number/],
    ['/v1/chat/completions', chat('x', { top_p: 0 }), 'top_p', />0/],
    ['/v1/chat/completions', chat('x', { n: 0 }), 'n', /expected number to be >=1/],
    ['/v1/chat/completions', chat('x', { response_format: { type: 'json_object' } }), 'response_format.type', /only "text" is supported/],
    ['/v1/completions', { prompt: [] }, 'prompt', /expected a string, a list of strings/],
    ['/v1/completions', { prompt: 'x', n: 2, best_of: 3 }, 'best_of', /best_of other than n/],
    ['/generate', { text: 'x', stream: true }, 'stream', /streaming is not supported on \/generate/],
    ['/v1/chat/completions', chat('x'.repeat(600)), 'messages', /context is 512/],
    ['/v1/chat/completions', '{"messages": [', '(body)', /not valid JSON/],
    ['/generate', { sampling_params: {} }, 'text', /exactly one of "text"/],
    ['/generate', { text: 'x', sampling_params: { max_new_tokens: -1 } }, 'sampling_params.max_new_tokens', /expected number to be >=0/],
  ];
  for (const [path, body, param, message] of cases) {
    const r = await post(s.url, path, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.json.error.param, param, JSON.stringify(r.json));
    assert.match(r.json.error.message, message);
    assert.ok(r.json.error.message.startsWith(param), r.json.error.message);
  }
  const oov = await post(s.url, '/generate', { input_ids: [[1, 2], [3, 999]], sampling_params: { max_new_tokens: 2 } });
  assert.equal(oov.status, 400);
  assert.equal(oov.json.error.message, 'input_ids[1][1]: token id 999 is outside the vocabulary [0, 257)');
  assert.equal((await fetch(`${s.url}/nope`)).status, 404);
  const wrong = await fetch(`${s.url}/v1/chat/completions`);
  assert.equal(wrong.status, 405);
  assert.match((await wrong.json()).error.message, /use POST/);
});

test('concurrent requests are decoded in one batch', async () => {
  const s = await serve({ maxBatch: 8 });
  const outs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => post(s.url, '/v1/chat/completions', chat(`SAY:item ${i} ${'.'.repeat(i * 3)}`))));
  outs.forEach((o, i) => assert.equal(o.json.choices[0].message.content, `item ${i} ${'.'.repeat(i * 3)}`));
  assert.equal(s.scheduler.stats.maxRunning, 6);
  assert.equal(s.scheduler.stats.completed, 6);
  assert.ok(s.scheduler.stats.steps < 6 * 10, `six requests shared steps (${s.scheduler.stats.steps} steps)`);
});

test('continuous batching: a request joins a running batch, and the batch never exceeds max-batch', async () => {
  const s = await serve({ maxBatch: 2 });
  const long = post(s.url, '/v1/chat/completions', chat(`SAY:${'x'.repeat(150)}`));
  // Wait (bounded) until the long request is decoding, however slowly the machine runs.
  await until(() => s.scheduler.stats.steps > 0, 'the long request is running', 10_000);
  const short = await post(s.url, '/v1/chat/completions', chat('SAY:quick'));
  assert.equal(short.json.choices[0].message.content, 'quick');
  assert.equal(s.scheduler.stats.running, 1, 'the long request is still running when the short one is done');
  assert.equal(s.scheduler.stats.maxRunning, 2);
  assert.equal((await long).json.choices[0].message.content.length, 150);
  // Five at once with room for two: all served, never more than two per step.
  const many = await Promise.all([1, 2, 3, 4, 5].map((i) => post(s.url, '/v1/chat/completions', chat(`SAY:${'y'.repeat(i * 4)}`))));
  assert.deepEqual(many.map((m) => m.json.choices[0].message.content.length), [4, 8, 12, 16, 20]);
  assert.equal(Math.max(...s.scheduler.stats.recentBatchSizes), 2);
});

test('a failed prefill fails only its own request; a client that hangs up is dropped from the batch', async () => {
  const s = await serve({ maxBatch: 4 });
  const long = post(s.url, '/v1/chat/completions', chat(`SAY:${'w'.repeat(120)}`));
  while (s.scheduler.stats.steps < 3) await new Promise((r) => setTimeout(r, 2));
  const bad = await post(s.url, '/v1/chat/completions', chat('SAY:FAIL-PREFILL'));
  assert.equal(bad.status, 500);
  assert.match(bad.json.error.message, /prefill failed/);
  // A client that gives up: its sequence leaves the batch, the others go on.
  const ac = new AbortController();
  const gone = fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat(`SAY:${'q'.repeat(400)}`)), signal: ac.signal,
  });
  while (s.scheduler.stats.running < 2) await new Promise((r) => setTimeout(r, 2));
  ac.abort();
  await assert.rejects(gone);
  while (s.scheduler.stats.cancelled < 1) await new Promise((r) => setTimeout(r, 2));
  const r = await long;
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content.length, 120);
  assert.equal(s.scheduler.stats.cancelled, 1);
});

test('graceful shutdown lets a request in flight finish, then refuses connections', async () => {
  const s = await startServer({ backend, admitWaitMs: 0 });
  const inflight = post(s.url, '/v1/chat/completions', chat(`SAY:${'z'.repeat(60)}`));
  await until(() => s.scheduler.stats.steps > 0, 'the request is in flight', 10_000);
  await s.close(5000);
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content.length, 60);
  await assert.rejects(fetch(`${s.url}/health`));
});
