// The serving benchmark's load generator (bench/lib/serve-client.ts) against the server with the
// scripted stand-in model, over real HTTP on 127.0.0.1: it counts the completion tokens the server
// reports, plain and streamed, and times the first streamed token, in this process and forked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLoad, startLoadClient, type LoadSpec } from '../../bench/lib/serve-client.ts';
import { closingServers } from '../helpers/eval-server.ts';
import { scriptedBackend } from '../evaluation/scripted-backend.ts';

const start = closingServers();
// Every prompt is answered with "hello" (5 tokens, one byte each), then the end of sequence.
const serve = () => start({ backend: scriptedBackend(() => 'hello', { stepDelayMs: 2 }), admitWaitMs: 0 });

test('plain and streamed loads count the tokens the server reports and time the first token', async () => {
  const server = await serve();
  const prompts = Array.from({ length: 6 }, (_, i) => [...Buffer.from(`prompt ${i}`)]);
  const base: LoadSpec = { url: server.url, path: '/generate', prompts, concurrency: 3, newTokens: 16 };
  const plain = await runLoad(base);
  assert.equal(plain.requests, 6);
  assert.equal(plain.tokens, 6 * 5);
  assert.equal(plain.latenciesS.length, 6);
  assert.deepEqual(plain.ttftS, []);
  const streamed = await runLoad({ ...base, path: '/v1/completions', stream: true });
  assert.equal(streamed.tokens, 6 * 5);
  assert.equal(streamed.ttftS.length, 6);
  streamed.ttftS.forEach((t, i) => assert.ok(t > 0 && t <= Math.max(...streamed.latenciesS), `request ${i}: first token at ${t} s`));
});

test('the forked load generator answers a load and reports a server error', async () => {
  const server = await serve();
  const client = startLoadClient();
  try {
    const r = await client.load({ url: server.url, path: '/generate', prompts: [[104, 105]], concurrency: 1, newTokens: 8 });
    assert.equal(r.tokens, 5);
    await assert.rejects(client.load({ url: server.url, path: '/generate', prompts: [[]], concurrency: 1, newTokens: 8 }), /HTTP 400/);
  } finally {
    client.close();
  }
});
