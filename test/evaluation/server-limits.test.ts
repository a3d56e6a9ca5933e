// The server's limits and its fairness under load, over real HTTP on 127.0.0.1. The model is
// the scripted stand-in (scripted-backend.ts): the real engine would need minutes to decode
// the large batches sent here, while the HTTP layer and the scheduler under test are the
// same whatever the backend. Load is bounded and sent only to 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { ServerOptions } from '../../evaluation/server.ts';
import { closingServers, postJson as post, until } from '../helpers/eval-server.ts';
import { scriptedBackend, type ScriptedBackend } from './scripted-backend.ts';

const say = (prompt: string) => /SAY:([^\n]*)/.exec(prompt)?.[1] ?? 'Hello.';

/** A scripted backend that records what it is asked to tokenize. */
function spiedBackend(opts: { contextLength?: number; stepDelayMs?: number; encodeCostMs?: number } = {}) {
  const backend: ScriptedBackend = scriptedBackend(say, { contextLength: opts.contextLength ?? 512, stepDelayMs: opts.stepDelayMs ?? 1 });
  const seen = { encodes: 0, longest: 0 };
  const { encode, encodeChat } = backend;
  backend.encode = (text) => {
    seen.encodes++;
    seen.longest = Math.max(seen.longest, text.length);
    // A tokenizer that costs real time per prompt, as a large vocabulary's does.
    if (opts.encodeCostMs) for (const end = performance.now() + opts.encodeCostMs; performance.now() < end;);
    return encode(text);
  };
  backend.encodeChat = (messages) => {
    seen.longest = Math.max(seen.longest, messages.reduce((n, m) => n + m.content.length, 0));
    return encodeChat(messages);
  };
  return { backend, seen };
}

const start = closingServers();
const serve = (opts: Partial<ServerOptions> & { backend: ScriptedBackend }) => start({ admitWaitMs: 0, ...opts });

const chat = (content: string) => ({ messages: [{ role: 'user', content }], temperature: 0 });

test('a /generate request with more prompts than allowed gets a 400 before any is tokenized', async () => {
  const { backend, seen } = spiedBackend();
  const s = await serve({ backend, maxPromptsPerRequest: 8 });
  const texts = await post(s.url, '/generate', { text: Array(9).fill('SAY:x'), sampling_params: { max_new_tokens: 1 } });
  assert.equal(texts.status, 400);
  assert.equal(texts.json.error.param, 'text');
  assert.equal(texts.json.error.type, 'invalid_request_error');
  assert.match(texts.json.error.message, /^text: 9 prompts in one request; at most 8/);
  const ids = await post(s.url, '/generate', { input_ids: Array(9).fill([65]), sampling_params: { max_new_tokens: 1 } });
  assert.equal(ids.status, 400);
  assert.match(ids.json.error.message, /^input_ids: 9 prompts in one request; at most 8/);
  assert.equal(seen.encodes, 0);
  const fits = await post(s.url, '/generate', { text: Array(8).fill('SAY:x'), sampling_params: { temperature: 0 } });
  assert.equal(fits.status, 200);
  assert.deepEqual(fits.json.map((r: any) => r.text), Array(8).fill('x'));
});

test('a full waiting queue answers 503 with Retry-After; what still fits is queued', async () => {
  const { backend } = spiedBackend();
  const s = await serve({ backend, maxBatch: 1, maxWaiting: 4, maxPromptsPerRequest: 4 });
  const ac = new AbortController();
  const big = post(s.url, '/generate', { text: Array(4).fill(`SAY:${'x'.repeat(300)}`), sampling_params: { temperature: 0 } }, ac.signal).catch(() => null);
  await until(() => s.scheduler.stats.running === 1 && s.scheduler.stats.waiting === 3, 'the first request to be queued');
  const full = await post(s.url, '/generate', { text: ['SAY:a', 'SAY:b'], sampling_params: { temperature: 0 } });
  assert.equal(full.status, 503);
  assert.ok(Number(full.headers.get('retry-after')) >= 1, `Retry-After: ${full.headers.get('retry-after')}`);
  assert.match(full.json.error.message, /queue is full/);
  const one = await post(s.url, '/v1/chat/completions', chat('SAY:ok'));
  assert.equal(one.status, 200);
  assert.equal(one.json.choices[0].message.content, 'ok');
  ac.abort();
  await big;
  await until(() => s.scheduler.stats.running === 0 && s.scheduler.stats.waiting === 0, 'the cancelled request to leave');
});

test('a small request is admitted promptly while a large batch runs (round-robin across requests)', async () => {
  const { backend } = spiedBackend();
  const s = await serve({ backend, maxBatch: 4 });
  const ac = new AbortController();
  const big = post(s.url, '/generate', { text: Array(400).fill(`SAY:${'y'.repeat(10)}`), sampling_params: { temperature: 0 } }, ac.signal).catch(() => null);
  await until(() => s.scheduler.stats.running === 4, 'the large batch to run');
  const small = await post(s.url, '/v1/chat/completions', chat('SAY:abc'));
  assert.equal(small.json.choices[0].message.content, 'abc');
  // First come, first served would make the chat wait for all 400 prompts.
  assert.ok(s.scheduler.stats.completed < 40, `${s.scheduler.stats.completed} sequences finished before the 3-token chat`);
  ac.abort();
  await big;
  await until(() => s.scheduler.stats.running === 0 && s.scheduler.stats.waiting === 0, 'the cancelled batch to leave');
});

test('/health answers within 1 s while a 100,000-prompt request is cancelled by its client', async () => {
  const { backend } = spiedBackend();
  const s = await serve({ backend, maxBatch: 32, maxPromptsPerRequest: 100_000, maxWaiting: 100_000 });
  const body = JSON.stringify({ text: Array(100_000).fill('SAY:zzzz'), sampling_params: { temperature: 0 } });
  const req = request(`${s.url}/generate`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
  req.on('error', () => {});
  req.end(body);
  await until(() => s.scheduler.stats.running > 0, 'the batch to start');
  assert.ok(s.scheduler.stats.waiting > 90_000);
  req.destroy();
  const t0 = performance.now();
  const health = await fetch(`${s.url}/health`);
  const ms = performance.now() - t0;
  assert.equal(health.status, 200);
  assert.ok(ms < 1000, `/health took ${ms.toFixed(0)} ms`);
  await until(() => s.scheduler.stats.running === 0 && s.scheduler.stats.waiting === 0, 'the cancelled request to leave', 5000);
  assert.ok(s.scheduler.stats.cancelled > 90_000);
  const next = await post(s.url, '/v1/chat/completions', chat('SAY:next'));
  assert.equal(next.json.choices[0].message.content, 'next');
});

test('tokenizing a large batch lets other requests through between chunks', async () => {
  const { backend, seen } = spiedBackend({ encodeCostMs: 0.5 });
  const s = await serve({ backend, maxBatch: 32 });
  const gen = post(s.url, '/generate', { text: Array(2000).fill('SAY:q'), sampling_params: { temperature: 0, max_new_tokens: 1 } });
  await until(() => seen.encodes > 0, 'tokenizing to start');
  const health = await fetch(`${s.url}/health`);
  assert.equal(health.status, 200);
  assert.ok(seen.encodes < 2000, `/health waited for all ${seen.encodes} prompts to be tokenized`);
  const r = await gen;
  assert.equal(r.status, 200);
  assert.equal(r.json.length, 2000);
});

test('a prompt far past the context is refused after tokenizing a bounded prefix only', async () => {
  const { backend, seen } = spiedBackend({ contextLength: 512 });
  const s = await serve({ backend });
  const huge = 'x'.repeat(3_000_000);
  const c = await post(s.url, '/v1/chat/completions', chat(huge));
  assert.equal(c.status, 400);
  assert.equal(c.json.error.param, 'messages');
  assert.match(c.json.error.message, /^messages: the prompt has more than \d+ tokens but the model's context is 512/);
  const g = await post(s.url, '/generate', { text: ['SAY:ok', huge], sampling_params: { max_new_tokens: 1 } });
  assert.equal(g.status, 400);
  assert.match(g.json.error.message, /^text\[1\]: the prompt has more than \d+ tokens but the model's context is 512/);
  const p = await post(s.url, '/v1/completions', { prompt: huge, max_tokens: 1 });
  assert.equal(p.status, 400);
  assert.match(p.json.error.message, /^prompt: the prompt has more than \d+ tokens/);
  assert.ok(seen.longest < 100_000, `tokenized ${seen.longest} characters of a 3,000,000-character prompt`);
  // Prompts that fit are tokenized whole, as before.
  const fits = await post(s.url, '/v1/chat/completions', chat(`SAY:${'w'.repeat(400)}`));
  assert.equal(fits.status, 200);
  assert.equal(fits.json.choices[0].finish_reason, 'length');
});

test('the default body limit is a few MiB, and 413 is a client error', async () => {
  const { backend } = spiedBackend();
  const s = await serve({ backend });
  const r = await post(s.url, '/v1/chat/completions', chat('x'.repeat(5 * 1024 * 1024)));
  assert.equal(r.status, 413);
  assert.equal(r.json.error.type, 'invalid_request_error');
  assert.match(r.json.error.message, /request body over \d+ bytes/);
  const small = await serve({ backend, maxBodyBytes: 1000 });
  const r2 = await post(small.url, '/v1/chat/completions', chat('x'.repeat(2000)));
  assert.equal(r2.status, 413);
});
