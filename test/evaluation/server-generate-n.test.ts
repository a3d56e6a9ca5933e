// SGLang's /generate with sampling_params.n > 1, over real HTTP on 127.0.0.1, with the scripted
// stand-in model (scripted-backend.ts: the real engine would take minutes here, while the HTTP
// layer and the scheduler under test are the same whatever the backend).
// As SGLang: n outputs per prompt, a flat list prompt-major (prompt i, choice j at i × n + j);
// choice k of the request samples from rowSeed(seed, k), as on /v1/completions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rowSeed } from '../../engine/generate.ts';
import type { ServerOptions } from '../../evaluation/server.ts';
import { closingServers, postJson, until } from '../helpers/eval-server.ts';
import { scriptedBackend, type ScriptedBackend } from './scripted-backend.ts';

/** Answers the text after "SAY:", led by the seed when sampling, so each output's stream is visible. */
function backendWithCount(): { backend: ScriptedBackend; seen: { encodes: number } } {
  const backend = scriptedBackend((prompt, s) => {
    const said = /SAY:([^\n]*)/.exec(prompt)?.[1] ?? 'Hello.';
    return s.temperature > 0 ? `[${s.seed}] ${said}` : said;
  }, { contextLength: 512, stepDelayMs: 1 });
  const seen = { encodes: 0 };
  const { encode } = backend;
  backend.encode = (text) => {
    seen.encodes++;
    return encode(text);
  };
  return { backend, seen };
}

const start = closingServers();
const serve = (opts: Partial<ServerOptions> & { backend: ScriptedBackend }) => start({ admitWaitMs: 0, ...opts });

const post = (url: string, body: unknown, signal?: AbortSignal) => postJson(url, '/generate', body, signal);

test('one prompt with n = 3 gives a list of 3 outputs, output k from rowSeed(seed, k); output 0 is the n = 1 answer', async () => {
  const { backend } = backendWithCount();
  const s = await serve({ backend });
  const r = await post(s.url, { text: 'SAY:hi', sampling_params: { temperature: 0.7, seed: 7, n: 3, max_new_tokens: 64 }, return_logprob: true });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.ok(Array.isArray(r.json), 'a list, as SGLang answers for n > 1');
  assert.deepEqual(r.json.map((o: any) => o.text), [0, 1, 2].map((k) => `[${rowSeed(7, k)}] hi`));
  for (const o of r.json) {
    assert.deepEqual(o.output_ids, backend.encode(o.text));
    assert.equal(o.meta_info.prompt_tokens, backend.encode('SAY:hi').length);
    assert.equal(o.meta_info.completion_tokens, o.output_ids.length);
    assert.equal(o.meta_info.output_token_logprobs.length, o.output_ids.length);
  }
  assert.equal(new Set(r.json.map((o: any) => o.meta_info.id)).size, 3, 'each output has its own id');
  const one = await post(s.url, { text: 'SAY:hi', sampling_params: { temperature: 0.7, seed: 7, max_new_tokens: 64 } });
  assert.equal(one.status, 200);
  assert.equal(one.json.text, r.json[0].text, 'n = 1 is still one object, and it is output 0 of n = 3');
});

test('a batch with n = 2 is a flat list prompt-major, seeded as /v1/completions seeds its choices', async () => {
  const { backend } = backendWithCount();
  const s = await serve({ backend });
  const sp = { temperature: 1, seed: 11, n: 2, max_new_tokens: 64 };
  const texts = await post(s.url, { text: ['SAY:a', 'SAY:b', 'SAY:c'], sampling_params: sp });
  assert.equal(texts.status, 200, JSON.stringify(texts.json));
  const expected = ['a', 'a', 'b', 'b', 'c', 'c'].map((w, k) => `[${rowSeed(11, k)}] ${w}`);
  assert.deepEqual(texts.json.map((o: any) => o.text), expected);
  const ids = await post(s.url, { input_ids: ['SAY:a', 'SAY:b', 'SAY:c'].map((t) => backend.encode(t)), sampling_params: sp });
  assert.equal(ids.status, 200, JSON.stringify(ids.json));
  assert.deepEqual(ids.json.map((o: any) => o.text), expected);
  const completions = await fetch(`${s.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: ['SAY:a', 'SAY:b', 'SAY:c'], n: 2, seed: 11, temperature: 1, max_tokens: 64 }),
  }).then((r) => r.json() as Promise<any>);
  assert.deepEqual(completions.choices.map((c: any) => c.text), expected, 'the same outputs as /v1/completions with the same n and seed');
});

test('prompts × n count against the prompt cap (400 before anything is tokenized) and a bad n names its field', async () => {
  const { backend, seen } = backendWithCount();
  const s = await serve({ backend, maxPromptsPerRequest: 8 });
  const over = await post(s.url, { text: Array(3).fill('SAY:x'), sampling_params: { temperature: 0, n: 3 } });
  assert.equal(over.status, 400);
  assert.equal(over.json.error.param, 'text');
  assert.match(over.json.error.message, /^text: 3 prompts × n = 3 make 9 sequences in one request; at most 8/);
  const single = await post(s.url, { text: 'SAY:x', sampling_params: { temperature: 0, n: 9 } });
  assert.equal(single.status, 400);
  assert.match(single.json.error.message, /make 9 sequences in one request; at most 8/);
  assert.equal(seen.encodes, 0, 'refused before tokenizing');
  const fits = await post(s.url, { input_ids: Array(4).fill([83, 65, 89, 58, 120]), sampling_params: { temperature: 0, n: 2 } });
  assert.equal(fits.status, 200, JSON.stringify(fits.json));
  assert.deepEqual(fits.json.map((o: any) => o.text), Array(8).fill('x'));
  for (const n of [0, 1.5, -1]) {
    const bad = await post(s.url, { text: 'SAY:x', sampling_params: { n } });
    assert.equal(bad.status, 400, `n = ${n}`);
    assert.equal(bad.json.error.param, 'sampling_params.n', `n = ${n}`);
  }
});

test('prompts × n count against the waiting queue: 503 with Retry-After when they do not fit', async () => {
  const { backend } = backendWithCount();
  const s = await serve({ backend, maxBatch: 1, maxWaiting: 6, maxPromptsPerRequest: 6 });
  const ac = new AbortController();
  const big = post(s.url, { text: `SAY:${'x'.repeat(300)}`, sampling_params: { temperature: 0, n: 3 } }, ac.signal).catch(() => null);
  await until(() => s.scheduler.stats.running === 1 && s.scheduler.stats.waiting === 2, 'the first request to be queued');
  const full = await post(s.url, { text: ['SAY:a', 'SAY:b'], sampling_params: { temperature: 0, n: 3 } });
  assert.equal(full.status, 503);
  assert.ok(Number(full.headers.get('retry-after')) >= 1, `Retry-After: ${full.headers.get('retry-after')}`);
  assert.match(full.json.error.message, /queue is full \(6 sequences asked, room for 4\)/);
  ac.abort();
  await big;
  await until(() => s.scheduler.stats.running === 0 && s.scheduler.stats.waiting === 0, 'the cancelled request to leave');
});
