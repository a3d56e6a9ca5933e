// The teacher/judge servers (GPT-4o, SGLang) cannot be reached from the test machine:
// these tests talk real HTTP to a scripted OpenAI-compatible server on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatClient, ChatError, MalformedReplyError, parseRetryAfter } from '../../data/chat-client.ts';
import { startOpenAiServer, type Scripted } from '../helpers/openai-server.ts';

const fast = { initialBackoffMs: 10, maxBackoffMs: 5000, timeoutMs: 2000 };

async function withServer(replies: Scripted[] | ((n: number) => Scripted), fn: (url: string, server: Awaited<ReturnType<typeof startOpenAiServer>>) => Promise<void>) {
  const server = await startOpenAiServer((req) => (typeof replies === 'function' ? replies(req.n) : replies[Math.min(req.n, replies.length - 1)]));
  try {
    await fn(server.url, server);
  } finally {
    await server.close();
  }
}

test('a plain reply, the request body, the key from an env var, token usage', async () => {
  process.env.TEST_TEACHER_KEY = 'sk-test-123';
  await withServer(['Hello there'], async (url, server) => {
    const c = new ChatClient({ baseUrl: url + '/', model: 'teacher-x', apiKeyEnv: 'TEST_TEACHER_KEY', temperature: 0.3, ...fast });
    const r = await c.chat([{ role: 'user', content: 'Say hi, twelve chars' }]);
    assert.equal(r.text, 'Hello there');
    assert.equal(server.requests[0].headers.authorization, 'Bearer sk-test-123');
    assert.equal(server.requests[0].body.model, 'teacher-x');
    assert.equal(server.requests[0].body.temperature, 0.3);
    assert.deepEqual(c.usage, { requests: 1, retries: 0, failures: 0, promptTokens: 5, completionTokens: 3 });
  });
});

test('429 with Retry-After waits as told, then succeeds', async () => {
  await withServer([{ status: 429, headers: { 'retry-after': '1' } }, 'ok'], async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', ...fast });
    const t0 = Date.now();
    assert.equal((await c.chat([{ role: 'user', content: 'x' }])).text, 'ok');
    const waited = Date.now() - t0;
    assert.ok(waited >= 950, `waited ${waited} ms for Retry-After: 1`);
    assert.equal(server.requests.length, 2);
    assert.equal(c.usage.retries, 1);
  });
  assert.equal(parseRetryAfter('2.5'), 2500);
  assert.ok(Math.abs((parseRetryAfter(new Date(Date.now() + 3000).toUTCString()) ?? 0) - 3000) < 1100);
  assert.equal(parseRetryAfter('soon'), undefined);
});

test('5xx, dropped connections and timeouts are retried with backoff', async () => {
  const script: Scripted[] = [{ status: 500 }, { status: 503 }, { drop: true }, { delayMs: 400, then: 'late' }, 'finally'];
  await withServer(script, async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', ...fast, timeoutMs: 150 });
    assert.equal((await c.chat([{ role: 'user', content: 'x' }])).text, 'finally');
    assert.equal(server.requests.length, 5);
    assert.equal(c.usage.retries, 4);
  });
});

test('retries are bounded: the last error is reported', async () => {
  await withServer([{ status: 502, body: 'bad gateway' }], async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', ...fast, maxRetries: 2 });
    await assert.rejects(c.chat([{ role: 'user', content: 'x' }]), (e: unknown) => e instanceof ChatError && e.status === 502 && /HTTP 502: bad gateway/.test(e.message));
    assert.equal(server.requests.length, 3);
    assert.equal(c.usage.failures, 1);
  });
});

test('a refused connection is a network error, retried then reported', async () => {
  const server = await startOpenAiServer(() => 'x');
  const url = server.url;
  await server.close();
  const c = new ChatClient({ baseUrl: url, model: 'm', ...fast, maxRetries: 1 });
  await assert.rejects(c.chat([{ role: 'user', content: 'x' }]), /network error/);
  assert.equal(c.usage.requests, 2);
});

test('400 and 401 are not retried; a missing key env var is named', async () => {
  delete process.env.TEST_MISSING_KEY;
  await withServer([{ status: 401, body: '{"error":"no key"}' }], async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', apiKeyEnv: 'TEST_MISSING_KEY', ...fast });
    assert.equal(c.missingKeyEnv, 'TEST_MISSING_KEY');
    await assert.rejects(c.chat([{ role: 'user', content: 'x' }]), /HTTP 401.*TEST_MISSING_KEY is not set/);
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0].headers.authorization, undefined);
  });
});

test('concurrency is bounded', async () => {
  await withServer(() => ({ delayMs: 40, then: 'ok' }), async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', ...fast, concurrency: 3 });
    await Promise.all(Array.from({ length: 10 }, () => c.chat([{ role: 'user', content: 'x' }])));
    assert.equal(server.requests.length, 10);
    assert.equal(server.maxInFlight, 3);
  });
});

test('chatJson asks again after a malformed reply, and gives up after parseRetries', async () => {
  await withServer(['not json at all', '```json\n{"label": "pass",}\n```'], async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', ...fast });
    const v = await c.chatJson('give json', (x) => x as { label: string });
    assert.deepEqual(v, { label: 'pass' });
    assert.equal(server.requests.length, 2);
  });
  await withServer(['nope'], async (url, server) => {
    const c = new ChatClient({ baseUrl: url, model: 'm', ...fast });
    await assert.rejects(c.chatJson('give json', (x) => x, { parseRetries: 1 }), (e: unknown) => e instanceof MalformedReplyError && /2 replies/.test(e.message));
    assert.equal(server.requests.length, 2);
  });
});
