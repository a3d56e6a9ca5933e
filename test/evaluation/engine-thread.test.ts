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
  // The thread's stats cross with each request that ends, the batch sizes of the new steps only:
  // the server's side has the same steps and batch sizes as the scheduler on the server's thread.
  assert.ok(there.scheduler.stats.steps > 4);
  assert.equal(there.scheduler.stats.steps, here.scheduler.stats.steps);
  assert.deepEqual(there.scheduler.stats.recentBatchSizes, here.scheduler.stats.recentBatchSizes);
  assert.equal(there.scheduler.stats.completed, 6);

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
    // Two long sequences (the first streams, so its first text says it runs), then a short one: one
    // runs and two wait, and the queue is full for anything more until one ends (hundreds of steps).
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const long = { promptIds: threaded.encode('a'), maxNewTokens: 400, sampling: { temperature: 1, topP: 1, topK: 0, seed: 1 } };
    const first = server.scheduler.submitAll([{ ...long, onDelta: () => started() }, { ...long, sampling: { ...long.sampling, seed: 2 } }]);
    await running;
    const second = server.scheduler.submit({ ...long, maxNewTokens: 2 });
    assert.equal(server.scheduler.room, 0);
    const refused = await postJson(server.url, '/generate', { text: 'f', sampling_params: { temperature: 1, max_new_tokens: 2 } });
    assert.equal(refused.status, 503, JSON.stringify(refused.json));
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.match(refused.json.error.message, /waiting queue is full/);
    await Promise.all([first, second]);
    assert.ok(server.scheduler.room > 0);
  } finally {
    await server.close(1000);
  }
});

test('a decode thread that dies fails the requests it held, and the next request starts a new one', async () => {
  // A streamed request: its first text says the thread is decoding it; then the thread is stopped.
  const res = await fetch(`${there.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Jaundice', max_tokens: 400, temperature: 1, seed: 9, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const utf8 = new TextDecoder();
  let events = '';
  while (!/"text":"[^"]/.test(events)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the stream ended before any text: ${events}`);
    events += utf8.decode(value, { stream: true });
  }
  await threaded.stopThread();
  for (let r = await reader.read(); !r.done; r = await reader.read()) events += utf8.decode(r.value, { stream: true });
  const error = events.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6))).find((e) => e.error);
  assert.ok(error, `an error event ends the stream: ${events.slice(-300)}`);
  assert.equal(error.error.code, 500);
  assert.match(error.error.message, /decode thread stopped/);
  const short = { text: 'Jaundice', sampling_params: { temperature: 1, max_new_tokens: 12, seed: 9 } };
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
