// The server as the official `openai` npm client uses it, over real HTTP on 127.0.0.1: lists of
// prompts, token-id prompts, n choices, echo, logprobs, stop, seeds, streaming (server-sent
// events), response_format, served model names, and the limits kept with all of it. The model is
// the scripted stand-in (scripted-backend.ts): exact, fast answers that show the seed each choice
// samples with; the real engine's sampling is tested in server-openai-engine.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { rowSeed } from '../../engine/generate.ts';
import type { ServerOptions } from '../../evaluation/server.ts';
import { closingServers, until } from '../helpers/eval-server.ts';
import { scriptedBackend } from './scripted-backend.ts';

// Answers the text after "SAY:" in the last user turn (or the prompt), prefixed with the seed
// when the temperature is above 0, so the seed each choice samples with is visible.
const script = (prompt: string, s: { temperature: number; seed: number }) => {
  const said = /SAY:([^\n]*)/.exec(prompt.split('<|user|>').pop() ?? '')?.[1] ?? 'Hello.';
  return s.temperature > 0 ? `[${s.seed}] ${said}` : said;
};

const start = closingServers();
async function serve(opts: Partial<ServerOptions> & { stepDelayMs?: number } = {}) {
  const backend = scriptedBackend(script, { contextLength: 512, stepDelayMs: opts.stepDelayMs ?? 0 });
  const server = await start({ backend, admitWaitMs: 2, ...opts });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: opts.apiKey ?? 'unused', maxRetries: 0, timeout: 20_000 });
  return { server, client, backend };
}

test('completions: a list of prompts (as HuatuoGPT-o1 sends them) gets one choice per prompt, in order', async () => {
  const { client } = await serve();
  const prompts = ['SAY:first', 'SAY:second answer', 'SAY:third'];
  const r = await client.completions.create({ model: 'scripted', prompt: prompts, temperature: 0, max_tokens: 64 });
  assert.equal(r.object, 'text_completion');
  assert.deepEqual(r.choices.map((c) => [c.index, c.text, c.finish_reason]), [[0, 'first', 'stop'], [1, 'second answer', 'stop'], [2, 'third', 'stop']]);
  const promptTokens = prompts.reduce((n, p) => n + Buffer.byteLength(p), 0);
  assert.deepEqual(r.usage, { prompt_tokens: promptTokens, completion_tokens: 5 + 13 + 5, total_tokens: promptTokens + 23 });
  // A single string still works, and max_tokens defaults to 16 as OpenAI's does.
  const one = await client.completions.create({ model: 'scripted', prompt: `SAY:${'z'.repeat(40)}`, temperature: 0 });
  assert.equal(one.choices[0].text, 'z'.repeat(16));
  assert.equal(one.choices[0].finish_reason, 'length');
});

test('completions: token-id prompts, alone or in a list', async () => {
  const { client } = await serve();
  const ids = (t: string) => [...Buffer.from(t)];
  const single = await client.completions.create({ model: 'scripted', prompt: ids('SAY:ids'), temperature: 0, max_tokens: 8 });
  assert.equal(single.choices[0].text, 'ids');
  const many = await client.completions.create({ model: 'scripted', prompt: [ids('SAY:one'), ids('SAY:two')], temperature: 0, max_tokens: 8 });
  assert.deepEqual(many.choices.map((c) => c.text), ['one', 'two']);
  await assert.rejects(
    client.completions.create({ model: 'scripted', prompt: [ids('SAY:a'), [1, 999]], max_tokens: 2 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && /prompt\[1\]\[1\]: token id 999 is outside the vocabulary/.test(e.message),
  );
});

test('completions: n choices per prompt, index = prompt * n + choice, each with its own seeded stream', async () => {
  const { client } = await serve();
  const ask = () => client.completions.create({ model: 'scripted', prompt: ['SAY:a', 'SAY:b', 'SAY:c'], n: 2, temperature: 0.7, seed: 9, max_tokens: 64 });
  const r = await ask();
  assert.equal(r.choices.length, 6);
  r.choices.forEach((c, k) => {
    assert.equal(c.index, k);
    assert.equal(c.text, `[${rowSeed(9, k)}] ${'abc'[Math.floor(k / 2)]}`);
  });
  assert.equal(new Set(r.choices.map((c) => c.text)).size, 6, 'every choice has its own seed');
  // The same request again samples the same choices.
  assert.deepEqual((await ask()).choices.map((c) => c.text), r.choices.map((c) => c.text));
});

test('completions: logprobs (tokens, token_logprobs, top_logprobs, text_offset), echo, stop', async () => {
  const { client } = await serve();
  const r = await client.completions.create({ model: 'scripted', prompt: 'SAY:Think. ## Final x', temperature: 0, max_tokens: 64, logprobs: 2, stop: ['## Final'] });
  const c = r.choices[0];
  assert.equal(c.text, 'Think. ');
  assert.equal(c.finish_reason, 'stop');
  assert.deepEqual(c.logprobs!.tokens, [...'Think. ']);
  assert.equal(c.logprobs!.token_logprobs!.length, 7);
  assert.deepEqual(c.logprobs!.text_offset, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(c.logprobs!.top_logprobs!.length, 7);
  // Echo: the prompt leads the text, and with logprobs its tokens lead the lists (the first has no log-probability).
  const prompt = 'SAY:hi';
  const e = await client.completions.create({ model: 'scripted', prompt, echo: true, logprobs: 1, temperature: 0, max_tokens: 8 });
  const ec = e.choices[0];
  assert.equal(ec.text, 'SAY:hihi');
  assert.equal(ec.logprobs!.tokens!.join(''), 'SAY:hihi');
  assert.equal(ec.logprobs!.token_logprobs![0], null);
  assert.deepEqual(ec.logprobs!.token_logprobs!.slice(1, 4), [-0.1, -0.2, -0.3]);
  assert.equal(ec.logprobs!.top_logprobs![0], null);
  assert.deepEqual(ec.logprobs!.text_offset, [0, 1, 2, 3, 4, 5, 6, 7]);
  ec.logprobs!.tokens!.forEach((t, k) => assert.equal(ec.text.slice(ec.logprobs!.text_offset![k]).startsWith(t), true));
  // max_tokens 0 with echo: the prompt scored, nothing generated.
  const scored = await client.completions.create({ model: 'scripted', prompt, echo: true, logprobs: 0, max_tokens: 0 });
  assert.equal(scored.choices[0].text, prompt);
  assert.equal(scored.choices[0].logprobs!.tokens!.length, prompt.length);
  assert.equal(scored.usage!.completion_tokens, 0);
});

test('chat: n choices with distinct derived seeds, deterministic; stop and logprobs per choice', async () => {
  const { client } = await serve();
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'SAY:yes. ## Final no' }];
  const r = await client.chat.completions.create({ model: 'scripted', messages, n: 3, seed: 4, temperature: 1, stop: '## Final', logprobs: true });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(r.choices.map((c) => c.message.content), [0, 1, 2].map((k) => `[${rowSeed(4, k)}] yes. `));
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop');
    assert.equal(c.logprobs!.content!.map((t) => t.token).join(''), c.message.content);
  }
  assert.equal(r.usage!.completion_tokens, r.choices.reduce((n, c) => n + Buffer.byteLength(c.message.content!), 0));
  const again = await client.chat.completions.create({ model: 'scripted', messages, n: 3, seed: 4, temperature: 1, stop: '## Final' });
  assert.deepEqual(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content));
  // Choice 0 of n = 3 is what n = 1 gives: a choice does not depend on the others.
  const single = await client.chat.completions.create({ model: 'scripted', messages, seed: 4, temperature: 1, stop: '## Final' });
  assert.equal(single.choices[0].message.content, r.choices[0].message.content);
});

test('chat: response_format text is accepted, the others refused with a 400 that says what to do', async () => {
  const { client } = await serve();
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'SAY:ok' }];
  const ok = await client.chat.completions.create({ model: 'scripted', messages, temperature: 0, response_format: { type: 'text' } });
  assert.equal(ok.choices[0].message.content, 'ok');
  await assert.rejects(
    client.chat.completions.create({ model: 'scripted', messages, response_format: { type: 'json_object' } }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'response_format.type' && /only "text" is supported/.test(e.message),
  );
});

test('chat streaming: the role first, content deltas, finish_reason, the usage chunk, [DONE]; stop strings never leak', async () => {
  const { client } = await serve({ stepDelayMs: 1 });
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'SAY:The answer is B. ## Final Response: C' }];
  const plain = await client.chat.completions.create({ model: 'scripted', messages, temperature: 0, stop: ['## Final'] });
  const stream = await client.chat.completions.create({
    model: 'scripted', messages, temperature: 0, stop: ['## Final'], stream: true, stream_options: { include_usage: true }, logprobs: true,
  });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const contents = chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? ''));
  assert.equal(contents.join(''), plain.choices[0].message.content);
  assert.equal(contents.join(''), 'The answer is B. ');
  assert.ok(contents.filter((t) => t).length > 3, `the text came in several deltas: ${JSON.stringify(contents)}`);
  assert.ok(contents.every((t) => !t.includes('#')), 'nothing of the stop string was sent');
  const finals = chunks.filter((c) => c.choices[0]?.finish_reason);
  assert.equal(finals.length, 1);
  assert.equal(finals[0].choices[0].finish_reason, 'stop');
  const tokens = chunks.flatMap((c) => c.choices.flatMap((x) => x.logprobs?.content ?? [])).map((t) => t.token).join('');
  assert.equal(tokens, 'The answer is B. ');
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, plain.usage);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
});

test('streaming over the wire: text/event-stream, data: lines, ended by data: [DONE]', async () => {
  const { server } = await serve();
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'SAY:hey' }], temperature: 0, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const events = (await res.text()).split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  assert.ok(events.every((e) => e.startsWith('data: ')));
  const json = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
  assert.ok(json.every((j) => j.object === 'chat.completion.chunk' && j.id === json[0].id && j.model === 'scripted'));
  assert.equal(json.map((j) => j.choices[0].delta.content ?? '').join(''), 'hey');
});

test('completions streaming with a list of prompts and n: each index gets its text and its finish_reason', async () => {
  const { client } = await serve({ stepDelayMs: 1 });
  const prompts = ['SAY:alpha', 'SAY:beta gamma'];
  const plain = await client.completions.create({ model: 'scripted', prompt: prompts, n: 2, temperature: 0.5, seed: 3, max_tokens: 64 });
  const stream = await client.completions.create({ model: 'scripted', prompt: prompts, n: 2, temperature: 0.5, seed: 3, max_tokens: 64, stream: true, logprobs: 0 });
  const text = ['', '', '', ''];
  const finish: (string | null)[] = [null, null, null, null];
  const offsets: number[][] = [[], [], [], []];
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text[c.index] += c.text;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
      offsets[c.index].push(...(c.logprobs?.text_offset ?? []));
    }
  }
  assert.deepEqual(text, plain.choices.map((c) => c.text));
  assert.deepEqual(finish, ['stop', 'stop', 'stop', 'stop']);
  // text_offset runs on across the chunks of a choice.
  offsets.forEach((o, k) => assert.deepEqual(o, [...Array(text[k].length).keys()]));
  // Echo comes first when streaming too.
  const echoed = await client.completions.create({ model: 'scripted', prompt: 'SAY:x', echo: true, temperature: 0, stream: true });
  let all = '';
  for await (const chunk of echoed) all += chunk.choices[0]?.text ?? '';
  assert.equal(all, 'SAY:xx');
});

test('a streamed request, an n = 4 request and plain ones share decode batches', async () => {
  const { client, server } = await serve({ stepDelayMs: 2, maxBatch: 16 });
  const long = 'l'.repeat(60);
  const stream = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: `SAY:${long}` }], temperature: 0, stream: true });
  const streamed = (async () => {
    let t = '';
    for await (const c of stream) t += c.choices[0]?.delta.content ?? '';
    return t;
  })();
  await until(() => server.scheduler.stats.running >= 1, 'the stream to run', 10_000);
  const [four, a, b] = await Promise.all([
    client.completions.create({ model: 'scripted', prompt: `SAY:${'f'.repeat(30)}`, n: 4, temperature: 0, max_tokens: 64 }),
    client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'SAY:plain a' }], temperature: 0 }),
    client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'SAY:plain b' }], temperature: 0 }),
  ]);
  assert.deepEqual(four.choices.map((c) => c.text), Array(4).fill('f'.repeat(30)));
  assert.equal(a.choices[0].message.content, 'plain a');
  assert.equal(b.choices[0].message.content, 'plain b');
  assert.equal(await streamed, long);
  assert.equal(server.scheduler.stats.maxRunning, 7, 'the stream, the four choices and the two plain requests in one batch');
});

test('a client that hangs up mid-stream frees its places in the batch at once', async () => {
  const { client, server } = await serve({ stepDelayMs: 2, maxBatch: 4 });
  const stream = await client.chat.completions.create({
    model: 'scripted', messages: [{ role: 'user', content: `SAY:${'s'.repeat(400)}` }], n: 3, temperature: 0, stream: true,
  });
  let received = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) received++;
    if (received >= 3) break; // leaving the loop aborts the HTTP request
  }
  await until(() => server.scheduler.stats.running === 0, 'the cancelled sequences to leave the batch', 2000);
  assert.equal(server.scheduler.stats.cancelled, 3);
  assert.ok(server.scheduler.stats.generatedTokens < 3 * 400, 'the choices did not run to their end');
  const next = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'SAY:after' }], temperature: 0 });
  assert.equal(next.choices[0].message.content, 'after');
});

test('served model names: /v1/models lists them, "default" is accepted, another name is a 404 model_not_found', async () => {
  const { client } = await serve({ servedModelNames: ['huatuo-tiny/sft', 'tiny'] });
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['huatuo-tiny/sft', 'tiny']);
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'SAY:ok' }];
  for (const model of ['huatuo-tiny/sft', 'tiny', 'default']) {
    const r = await client.chat.completions.create({ model, messages, temperature: 0 });
    assert.equal(r.choices[0].message.content, 'ok');
    assert.equal(r.model, model === 'default' ? 'huatuo-tiny/sft' : model);
  }
  for (const call of [
    () => client.chat.completions.create({ model: 'checkpoint', messages }),
    () => client.completions.create({ model: 'checkpoint', prompt: 'SAY:x' }),
  ]) {
    await assert.rejects(call(), (e: unknown) =>
      e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found' && e.param === 'model' && /`checkpoint` does not exist.*"huatuo-tiny\/sft"/.test(e.message));
  }
});

test('limits hold with n and lists: prompts × n against the prompt cap, the queue (503 Retry-After), the API key', async () => {
  const { client, server } = await serve({ maxPromptsPerRequest: 4, maxWaiting: 6, maxBatch: 1, stepDelayMs: 2, apiKey: 'k-1' });
  await assert.rejects(client.completions.create({ model: 'scripted', prompt: ['SAY:a', 'SAY:b', 'SAY:c'], n: 2 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'prompt' && /6 sequences in one request; at most 4/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'x' }], n: 5 }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'n' && /5 sequences/.test(e.message));
  const wrongKey = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  await assert.rejects(wrongKey.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'x' }], stream: true }),
    (e: unknown) => e instanceof OpenAI.AuthenticationError);
  // One sequence runs, four wait: room for two more; a request of three is refused with Retry-After.
  const busy = client.completions.create({ model: 'scripted', prompt: [`SAY:${'x'.repeat(80)}`, 'SAY:1', 'SAY:2', 'SAY:3'], max_tokens: 64 });
  await until(() => server.scheduler.stats.running === 1, 'the batch to fill', 10_000);
  const more = client.completions.create({ model: 'scripted', prompt: 'SAY:y', max_tokens: 2 });
  await until(() => server.scheduler.room === 2, 'the queue to hold four', 10_000);
  await assert.rejects(client.completions.create({ model: 'scripted', prompt: ['SAY:a', 'SAY:b', 'SAY:c'], stream: true }),
    (e: unknown) => e instanceof OpenAI.APIError && e.status === 503 && e.headers?.get('retry-after') === '1');
  assert.equal((await busy).choices.length, 4);
  assert.equal((await more).choices[0].text.length, 2);
});

test('streaming multi-byte text: a character split over tokens is sent whole, never as U+FFFD', async () => {
  const { client } = await serve();
  const said = 'café → 心電図 ok';
  const stream = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: `SAY:${said}` }], temperature: 0, stream: true, stop: ['zz'] });
  const parts: string[] = [];
  for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? '');
  assert.equal(parts.join(''), said);
  assert.ok(parts.every((p) => !p.includes('\uFFFD')), JSON.stringify(parts));
});

test('a failure after the stream opened comes as an error event, then [DONE]; the client sees an error', async () => {
  const { client, server } = await serve();
  // The scripted model fails the prefill of this prompt; admission happens after the stream opened.
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'scripted', prompt: 'SAY:FAIL-PREFILL', stream: true }),
  });
  assert.equal(res.status, 200);
  const events = (await res.text()).split('\n\n').filter(Boolean);
  assert.equal(events.length, 2, JSON.stringify(events));
  const error = JSON.parse(events[0].slice('data: '.length));
  assert.match(error.error.message, /prefill failed/);
  assert.equal(events[1], 'data: [DONE]');
  const stream = await client.completions.create({ model: 'scripted', prompt: 'SAY:FAIL-PREFILL', stream: true });
  await assert.rejects((async () => {
    for await (const _ of stream) { /* the error event throws */ }
  })(), (e: unknown) => e instanceof OpenAI.APIError && /prefill failed/.test(e.message));
});
