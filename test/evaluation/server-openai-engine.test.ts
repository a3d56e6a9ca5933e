// The server on the real engine (a tiny random Qwen2 checkpoint with the parity fixture's
// tokenizer) through the official openai client: log-probabilities and the alternatives at each
// step, top_k and min_p, seeded n > 1, prompt scoring with echo, and GRPO rollouts through the
// server compared with the in-process rollout (rl/rollout.ts) for the same seed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import OpenAI from 'openai';
import { generate } from '../../engine/generate.ts';
import { loadEngineBackend } from '../../evaluation/engine-backend.ts';
import { startServer, type RunningServer } from '../../evaluation/server.ts';
import { scoringTemperature } from '../../rl/batch.ts';
import { rollout } from '../../rl/rollout.ts';
import { tinyModel } from './tiny-model.ts';

let dir: string;
let backend: Awaited<ReturnType<typeof loadEngineBackend>>;
let server: RunningServer;
let client: OpenAI;
const MODEL = 'tiny/rl';

before(async () => {
  // Larger initial weights than usual spread the logits, so sampling cuts make a visible difference.
  dir = await tinyModel(11, { initializerRange: 0.3, context: 512 });
  backend = await loadEngineBackend(dir);
  server = await startServer({ backend, maxBatch: 16, servedModelNames: [MODEL] });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});
after(async () => {
  await server?.close(1000);
  backend?.close();
  rmSync(dirname(dir), { recursive: true, force: true });
});

const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What causes iron deficiency anemia?' }];
/** The token ids of a choice, from logprobs asked with return_tokens_as_token_ids (vLLM's option). */
const idsOf = (tokens: string[]) => tokens.map((t) => {
  assert.match(t, /^token_id:\d+$/);
  return Number(t.slice('token_id:'.length));
});
const asIds = { return_tokens_as_token_ids: true } as Record<string, unknown>;

test('chat logprobs: each token with its most likely alternatives, the greedy token first among them', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages, temperature: 0, max_tokens: 12, logprobs: true, top_logprobs: 5 });
  const content = r.choices[0].logprobs!.content!;
  assert.equal(content.length, r.usage!.completion_tokens);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 5);
    const lps = t.top_logprobs.map((x) => x.logprob);
    assert.deepEqual(lps, [...lps].sort((a, b) => b - a));
    assert.ok(lps.every((lp) => lp <= 0 && Number.isFinite(lp)));
    // Greedy: the token chosen is the most likely one.
    assert.equal(t.top_logprobs[0].token, t.token);
    assert.equal(t.top_logprobs[0].logprob, t.logprob);
  }
  // The same log-probabilities as the engine's own generator gives for the same tokens.
  const prompt = backend.encodeChat([{ role: 'user', content: messages[0].content as string }]);
  const ids = await client.completions.create({ model: MODEL, prompt, temperature: 0, max_tokens: 12, logprobs: 0, ...asIds });
  const alone = generate(backend.model, [prompt], { temperature: 0, maxNewTokens: 12 });
  const got = idsOf(ids.choices[0].logprobs!.tokens!);
  assert.deepEqual(got, alone.tokens[0].slice(0, got.length));
  ids.choices[0].logprobs!.token_logprobs!.forEach((lp, k) => assert.ok(Math.abs(lp - alone.logprobs[0][k]) < 1e-4, `token ${k}: ${lp} vs ${alone.logprobs[0][k]}`));
});

test('top_k and min_p: every sampled token passes the cut', async () => {
  const prompt = backend.encodeChat([{ role: 'user', content: 'Fever and cough for three days.' }]);
  const greedy = await client.completions.create({ model: MODEL, prompt, temperature: 0, max_tokens: 16 });
  // top_k = 1 and min_p = 1 both leave only the most likely token: greedy, whatever the temperature.
  for (const cut of [{ top_k: 1 }, { min_p: 1 }]) {
    const r = await client.completions.create({ model: MODEL, prompt, temperature: 1.5, seed: 3, max_tokens: 16, ...cut } as OpenAI.CompletionCreateParamsNonStreaming);
    assert.equal(r.choices[0].text, greedy.choices[0].text, JSON.stringify(cut));
  }
  // top_k = 3: each token is one of the three most likely at its step.
  const k3 = await client.completions.create({ model: MODEL, prompt, temperature: 1, seed: 5, n: 4, max_tokens: 16, logprobs: 3, top_k: 3, ...asIds } as OpenAI.CompletionCreateParamsNonStreaming);
  // min_p = 0.2 (at temperature 1): each token is at least 0.2 times as likely as the most likely one.
  const mp = await client.completions.create({ model: MODEL, prompt, temperature: 1, seed: 5, n: 4, max_tokens: 16, logprobs: 1, min_p: 0.2, ...asIds } as OpenAI.CompletionCreateParamsNonStreaming);
  // Without a cut, the same seeds pick tokens outside it (so the cuts above did something).
  const free = await client.completions.create({ model: MODEL, prompt, temperature: 1, seed: 5, n: 4, max_tokens: 16, logprobs: 3, ...asIds } as OpenAI.CompletionCreateParamsNonStreaming);
  let outsideTop3 = 0;
  for (const c of k3.choices) {
    const lp = c.logprobs!;
    idsOf(lp.tokens!).forEach((id, t) => assert.ok(Object.keys(lp.top_logprobs![t]).includes(`token_id:${id}`), `top_k 3: token ${t} of choice ${c.index}`));
  }
  for (const c of mp.choices) {
    const lp = c.logprobs!;
    lp.token_logprobs!.forEach((x, t) => {
      const best = Math.max(...Object.values(lp.top_logprobs![t]));
      assert.ok(x! >= best + Math.log(0.2) - 1e-6, `min_p 0.2: token ${t} of choice ${c.index}: ${x} vs best ${best}`);
    });
  }
  for (const c of free.choices) {
    const lp = c.logprobs!;
    idsOf(lp.tokens!).forEach((id, t) => {
      if (!Object.keys(lp.top_logprobs![t]).includes(`token_id:${id}`)) outsideTop3++;
    });
  }
  assert.ok(outsideTop3 > 0, 'sampling without a cut leaves the top 3 sometimes');
});

test('seeded n > 1: distinct choices, the same again for the same seed, each as an n = 1 request with its stream', async () => {
  const ask = (n: number) => client.chat.completions.create({ model: MODEL, messages, n, seed: 21, temperature: 1, max_tokens: 10 });
  const a = await ask(4);
  const b = await ask(4);
  assert.deepEqual(b.choices.map((c) => c.message.content), a.choices.map((c) => c.message.content));
  assert.ok(new Set(a.choices.map((c) => c.message.content)).size > 1, 'choices differ from each other');
  const one = await ask(1);
  assert.equal(one.choices[0].message.content, a.choices[0].message.content);
  const other = await client.chat.completions.create({ model: MODEL, messages, n: 4, seed: 22, temperature: 1, max_tokens: 10 });
  assert.notDeepEqual(other.choices.map((c) => c.message.content), a.choices.map((c) => c.message.content));
});

test('echo with logprobs scores the prompt as the model does', async () => {
  const prompt = backend.encode('The heart has four chambers.');
  const r = await client.completions.create({ model: MODEL, prompt, echo: true, logprobs: 2, max_tokens: 0, ...asIds } as OpenAI.CompletionCreateParamsNonStreaming);
  const lp = r.choices[0].logprobs!;
  assert.deepEqual(idsOf(lp.tokens!), prompt);
  assert.equal(lp.token_logprobs![0], null);
  // Token t + 1's log-probability is what greedy-free generation from the first t + 1 tokens gives it.
  for (const t of [1, 3, prompt.length - 1]) {
    const expected = generate(backend.model, [prompt.slice(0, t)], { maxNewTokens: 1, temperature: 0 });
    const top = Object.entries(lp.top_logprobs![t]!);
    assert.equal(top[0][0], `token_id:${expected.tokens[0][0]}`);
    assert.ok(Math.abs(top[0][1] - expected.logprobs[0][0]) < 1e-4);
  }
});

// What holds, and why: rollout() samples the group (prompts × num_generations, prompt-major) in
// one generate() call where row k draws from its own stream, Rng(seed).fork(`row k`); the server
// gives choice k (index = prompt * n + j) the same stream, rowSeed(seed, k). So the same tokens
// are drawn as long as the logits are the same; they are computed by the same model, though in
// another batch layout (sequences leave the server's batch when they end), which can change the
// last bits of a logit: a draw that falls within such a rounding of a boundary could differ, so
// the log-probabilities are compared to 1e-4. What differs by design: the server leaves the
// end-of-turn token out of the choice (finish_reason "stop", matched_stop is its id), the rollout
// keeps it as the response's last token; the server's logprobs are under the model at
// temperature 1, as generate()'s are (the RL loop computes its own at the sampling temperature).
test('GRPO rollouts through the server (n = num_generations) sample what the in-process rollout samples for the same seed', async () => {
  const questions = ['A child with a barking cough.', 'Chest pain on exertion, relieved by rest.', 'Which vitamin deficiency causes scurvy?'];
  const tok = backend.tokenizer;
  const prompts = questions.map((q) => tok.encodeChat([{ role: 'user', content: q }]));
  // As rl/loop.ts calls it: the temperature the loop samples at (0.7 + 1e-7), a 32-bit seed drawn from its RNG.
  const o = { numGenerations: 4, temperature: scoringTemperature(0.7), topP: 1, responseLength: 12, seed: 3_000_000_123 };
  const local = rollout(backend.model, tok, prompts, o);
  const remote = await client.completions.create({
    model: MODEL, prompt: prompts, n: o.numGenerations, temperature: o.temperature, top_p: o.topP, max_tokens: o.responseLength,
    seed: o.seed, logprobs: 0, ...asIds,
  } as OpenAI.CompletionCreateParamsNonStreaming);
  assert.equal(remote.choices.length, local.responses.length);
  const eos = new Set(tok.eosTokenIds);
  remote.choices.forEach((c, k) => {
    assert.equal(c.index, k);
    // The same group: choice k answers prompt floor(k / n), as rollout's row k does.
    assert.equal(Math.floor(k / o.numGenerations), local.group[k]);
    // The server leaves the end-of-turn token out of the text and the tokens (finish_reason "stop"
    // and matched_stop name it); the rollout keeps it as the response's last token.
    const ids = idsOf(c.logprobs!.tokens!);
    const finished = c.finish_reason === 'stop';
    if (finished) ids.push((c as unknown as { matched_stop: number }).matched_stop);
    assert.deepEqual(ids, local.responses[k], `choice ${k}`);
    assert.equal(finished, local.finished[k]);
    assert.ok(!finished || eos.has(ids.at(-1)!));
  });
  // The log-probabilities of the sampled tokens agree with the engine's batched generator.
  const g = generate(backend.model, local.prompts, { temperature: o.temperature, topP: 1, maxNewTokens: o.responseLength, seed: o.seed, stopTokenIds: tok.eosTokenIds, padTokenId: tok.batchPadId });
  remote.choices.forEach((c, k) => c.logprobs!.token_logprobs!.forEach((lp, t) =>
    assert.ok(Math.abs(lp! - g.logprobs[k][t]) < 1e-4, `choice ${k} token ${t}: ${lp} vs ${g.logprobs[k][t]}`)));
  // At temperature 0 every choice of a prompt is its greedy answer.
  const greedy = await client.completions.create({ model: MODEL, prompt: prompts, n: 2, temperature: 0, max_tokens: 8 });
  for (let i = 0; i < prompts.length; i++) assert.equal(greedy.choices[2 * i].text, greedy.choices[2 * i + 1].text);
});
