// RL rollouts through the token-completions interface (evaluation/backend.ts): in-process on the
// engine, and over HTTP from the built-in server on 127.0.0.1 serving a tiny checkpoint, which
// must give the very rollout the in-process path gives for the same seed (tokens, the end-of-turn
// token kept last, finished flags, texts), also in slices that cut groups apart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Tokenizer } from '../../engine/tokenizer.ts';
import { loadEngineBackend } from '../../evaluation/engine-backend.ts';
import { engineCompletions, parseCompletionChoices, serverCompletions } from '../../evaluation/completions.ts';
import { startServer, type RunningServer } from '../../evaluation/server.ts';
import { scoringTemperature } from '../../rl/batch.ts';
import { rollout, rolloutSource, rolloutVia, type RolloutOptions } from '../../rl/rollout.ts';
import { tinyModel } from '../evaluation/tiny-model.ts';

let dir: string;
let backend: Awaited<ReturnType<typeof loadEngineBackend>>;
let server: RunningServer;
let tok: Tokenizer;
let prompts: number[][];
const MODEL = 'tiny/policy';

before(async () => {
  dir = await tinyModel(11, { initializerRange: 0.3, context: 512 });
  backend = await loadEngineBackend(dir);
  server = await startServer({ backend, maxBatch: 16, servedModelNames: [MODEL] });
  // A random tiny model seldom samples its real end-of-turn token: tokens it samples often play
  // that part here (the same tokenizer otherwise), so responses end by themselves or by length.
  tok = Object.create(backend.tokenizer, { eosTokenIds: { value: [446, 759, 797, 140, 194, 578, 722, 365] } }) as Tokenizer;
  prompts = ['A child with a barking cough.', 'Chest pain on exertion, relieved by rest.', 'Which vitamin deficiency causes scurvy?']
    .map((q) => tok.encodeChat([{ role: 'user', content: q }]));
});
after(async () => {
  await server?.close(1000);
  backend?.close();
  if (dir) rmSync(dirname(dir), { recursive: true, force: true });
});

// As rl/loop.ts asks: temperature + 1e-7, a 32-bit seed.
const opts: RolloutOptions = { numGenerations: 4, temperature: scoringTemperature(1), topP: 1, responseLength: 16, seed: 77 };

test('a rollout from the built-in server over /v1/completions is the in-process rollout for the same seed', async () => {
  const local = rollout(backend.model, tok, prompts, opts);
  // Both ways of ending occur, so the end-of-turn mapping is exercised.
  assert.ok(local.finished.some((f) => f) && local.finished.some((f) => !f), JSON.stringify(local.finished));
  const remote = await rolloutVia(serverCompletions({ baseUrl: `${server.url}/v1`, model: MODEL }), tok, prompts, opts);
  assert.deepEqual(remote, local);
  local.responses.forEach((r, k) => assert.equal(local.finished[k], tok.eosTokenIds.includes(r.at(-1)!), `response ${k} ends with its end-of-turn token`));
  // In-process through the same interface: the same again.
  assert.deepEqual(await rolloutVia(engineCompletions(backend.model, { padTokenId: tok.batchPadId }), tok, prompts, opts), local);
  // Slices that cut groups apart (one request per slice, seeded seed + start, rows asked with n = 1).
  const sliced = { ...opts, batchSize: 5 };
  assert.deepEqual(await rolloutVia(serverCompletions({ baseUrl: `${server.url}/v1`, model: MODEL }), tok, prompts, sliced), rollout(backend.model, tok, prompts, sliced));
});

test('rollout: a server is an explicit choice, with a warning that the trainer does not update its weights', async () => {
  const warnings: string[] = [];
  const source = rolloutSource({ base_url: `${server.url}/v1`, model: MODEL, api_key_env: 'UNSET_KEY_FOR_TEST', weights: 'fixed', timeout: 60, max_retries: 0 },
    backend.model, tok, (m) => warnings.push(m));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /does not update that server's weights/);
  assert.match(warnings[0], new RegExp(`"${MODEL}" at ${server.url}/v1`));
  assert.deepEqual(await rolloutVia(source, tok, prompts, opts), rollout(backend.model, tok, prompts, opts));
  const inProcess = rolloutSource(undefined, backend.model, tok, (m) => warnings.push(m));
  assert.equal(warnings.length, 1, 'in-process: no warning');
  assert.match(inProcess.where, /in-process/);
});

test('a server reply without token ids, or with the wrong number of choices, fails saying why', () => {
  const choice = (extra: Record<string, unknown>) => ({ index: 0, finish_reason: 'length', logprobs: { tokens: ['token_id:5'], token_logprobs: [-1] }, ...extra });
  assert.deepEqual(parseCompletionChoices({ choices: [choice({})] }, 1, 'S'), [{ tokens: [5], logprobs: [-1], finishReason: 'length' }]);
  assert.deepEqual(parseCompletionChoices({ choices: [choice({ finish_reason: 'stop', stop_reason: 9 })] }, 1, 'S')[0].matchedStop, 9);
  assert.throws(() => parseCompletionChoices({ choices: [choice({ logprobs: { tokens: ['hello'] } })] }, 1, 'S'), /S: choice 0 token 0 is "hello", not "token_id:ID".*return_tokens_as_token_ids/);
  assert.throws(() => parseCompletionChoices({ choices: [choice({ logprobs: null })] }, 1, 'S'), /S: choice 0 has no logprobs.tokens/);
  assert.throws(() => parseCompletionChoices({ choices: [choice({})] }, 2, 'S'), /S: expected 2 choices \(prompts × n\), got 1/);
  assert.throws(() => parseCompletionChoices({ choices: [choice({ finish_reason: 'abort' })] }, 1, 'S'), /finish_reason "abort"/);
});
