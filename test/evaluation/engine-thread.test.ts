// The server with its model in a decode thread (evaluation/engine-thread.ts), next to the same
// checkpoint decoded on the server's own thread: the same answers over real HTTP, streamed and
// not, prompt scoring, cancelling, a full queue, a thread that dies, a checkpoint that cannot load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadEngineBackend } from '../../evaluation/engine-backend.ts';
import { loadEngineThread } from '../../evaluation/engine-thread.ts';
import { startServer, type RunningServer } from '../../evaluation/server.ts';
import { postJson, until } from '../helpers/eval-server.ts';
import { tinyModel } from './tiny-model.ts';

let dir: string;
let local: Awaited<ReturnType<typeof loadEngineBackend>>;
let threaded: Awaited<ReturnType<typeof loadEngineThread>>;
let here: RunningServer;
let there: RunningServer;

before(async () => {
  dir = await tinyModel(13, { initializerRange: 0.3, context: 512 });
  local = await loadEngineBackend(dir);
  threaded = await loadEngineThread(dir);
  here = await startServer({ backend: local, maxBatch: 8 });
  there = await startServer({ backend: threaded, maxBatch: 8 });
});
after(async () => {
  await here?.close(1000);
  await there?.close(1000);
  local?.close();
  await threaded?.close();
  rmSync(dirname(dir), { recursive: true, force: true });
});

/** The data events of a streamed answer, parsed. */
async function events(url: string, body: unknown): Promise<any[]> {
  const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const text = await res.text();
  return text.split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]').map((e) => JSON.parse(e.slice(6)));
}

test('the decode thread answers as the engine on the server thread does, token for token', async () => {
  const generateBody = {
    text: ['Fever and a stiff neck suggest', 'The liver', 'Iron deficiency'], sampling_params: { temperature: 1, max_new_tokens: 24, seed: 5, n: 2 },
    return_logprob: true,
  };
  const [a, b] = await Promise.all([postJson(here.url, '/generate', generateBody), postJson(there.url, '/generate', generateBody)]);
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.equal(b.json.length, 6);
  assert.deepEqual(b.json.map((o: any) => o.output_ids), a.json.map((o: any) => o.output_ids));
  assert.deepEqual(b.json.map((o: any) => o.meta_info.output_token_logprobs), a.json.map((o: any) => o.meta_info.output_token_logprobs));
  assert.ok(b.json.some((o: any) => o.output_ids.length > 4), 'some sequence generated more than a few tokens');

  // Streamed, with a stop string and alternatives at each step: the same events' text and logprobs.
  const streamBody = { prompt: 'A patient presents with', max_tokens: 30, temperature: 0.8, seed: 3, stream: true, logprobs: 2, stop: ['ab'] };
  const [sa, sb] = await Promise.all([events(here.url, streamBody), events(there.url, streamBody)]);
  const pick = (evs: any[]) => evs.map((e) => ({ text: e.choices[0]?.text, lp: e.choices[0]?.logprobs, finish: e.choices[0]?.finish_reason }));
  assert.deepEqual(pick(sb), pick(sa));
  assert.ok(sb.length > 2, `streamed in pieces (${sb.length} events)`);

  // Prompt scoring (echo with logprobs) runs in the thread too.
  const echoBody = { prompt: 'The heart has four chambers', max_tokens: 1, temperature: 0, echo: true, logprobs: 3 };
  const [ea, eb] = await Promise.all([postJson(here.url, '/v1/completions', echoBody), postJson(there.url, '/v1/completions', echoBody)]);
  assert.equal(eb.status, 200);
  assert.deepEqual(eb.json.choices[0].logprobs, ea.json.choices[0].logprobs);
  assert.ok(eb.json.choices[0].logprobs.token_logprobs.filter((x: number | null) => x !== null).length >= 4);
});

test('a client that hangs up takes its sequences out of the thread', async () => {
  const before = there.scheduler.stats.cancelled;
  const ac = new AbortController();
  const res = await fetch(`${there.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
    body: JSON.stringify({ prompt: 'Chest pain', max_tokens: 400, temperature: 1, seed: 1, stream: true, n: 3 }),
  });
  const reader = res.body!.getReader();
  await reader.read(); // the stream is open: the request is in
  ac.abort();
  await until(() => there.scheduler.stats.cancelled >= before + 3, 'the thread to report three sequences cancelled');
  // The thread goes on serving.
  const ok = await postJson(there.url, '/generate', { text: 'Cough', sampling_params: { temperature: 0, max_new_tokens: 4 } });
  assert.equal(ok.status, 200);
});

test('a full queue in the thread is a 503 with Retry-After', async () => {
  const server = await startServer({ backend: threaded, maxBatch: 1, maxWaiting: 2, maxPromptsPerRequest: 2 });
  try {
    // One runs, two wait: the queue is full for anything more until one ends.
    const long = postJson(server.url, '/generate', { text: 'a', sampling_params: { temperature: 1, max_new_tokens: 400, seed: 1 } });
    const waiting = postJson(server.url, '/generate', { text: ['d', 'e'], sampling_params: { temperature: 1, max_new_tokens: 2, seed: 1 } });
    await until(() => server.scheduler.room === 0, 'the three sequences to be submitted');
    const refused = await postJson(server.url, '/generate', { text: 'f', sampling_params: { temperature: 1, max_new_tokens: 2 } });
    assert.equal(refused.status, 503, JSON.stringify(refused.json));
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(refused.json.error.message, /waiting queue is full/);
    assert.equal((await long).status, 200);
    assert.equal((await waiting).status, 200);
  } finally {
    await server.close(1000);
  }
});

test('a decode thread that dies fails the requests it held, and the next request starts a new one', async () => {
  const body = { text: 'Jaundice', sampling_params: { temperature: 1, max_new_tokens: 400, seed: 9 } };
  const pending = postJson(there.url, '/generate', body);
  await new Promise((r) => setTimeout(r, 30));
  await threaded.stopThread();
  const failed = await pending;
  assert.equal(failed.status, 500);
  assert.match(failed.json.error.message, /decode thread stopped/);
  const short = { ...body, sampling_params: { ...body.sampling_params, max_new_tokens: 12 } };
  const [again, reference] = await Promise.all([postJson(there.url, '/generate', short), postJson(here.url, '/generate', short)]);
  assert.equal(again.status, 200, JSON.stringify(again.json));
  assert.deepEqual(again.json.output_ids, reference.json.output_ids);
});

test('a checkpoint the thread cannot load fails loadEngineThread with the reason', async () => {
  const broken = await tinyModel(14);
  try {
    unlinkSync(join(broken, 'model.safetensors'));
    await assert.rejects(loadEngineThread(broken), /model\.safetensors/);
  } finally {
    rmSync(dirname(broken), { recursive: true, force: true });
  }
});
