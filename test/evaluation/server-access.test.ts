// Access control and request hygiene of the built-in server, over real HTTP on 127.0.0.1 with
// the scripted stand-in model (scripted-backend.ts): API keys, Content-Type, slow bodies,
// what /get_model_info reveals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { ServerOptions } from '../../evaluation/server.ts';
import { closingServers } from '../helpers/eval-server.ts';
import { scriptedBackend } from './scripted-backend.ts';

const backend = scriptedBackend((prompt) => /SAY:([^\n]*)/.exec(prompt)?.[1] ?? 'Hello.', { contextLength: 512 });
const start = closingServers();
const serve = (opts: Partial<ServerOptions> = {}) => start({ backend, admitWaitMs: 0, ...opts });
const chat = JSON.stringify({ messages: [{ role: 'user', content: 'SAY:hi' }], temperature: 0 });

test('with an API key every route but /health needs "Authorization: Bearer KEY"', async () => {
  const s = await serve({ apiKey: 'sekret-key' });
  assert.equal((await fetch(`${s.url}/health`)).status, 200);
  const bad: [string, RequestInit][] = [
    ['/v1/models', {}],
    ['/get_model_info', {}],
    ['/v1/models', { headers: { authorization: 'Bearer wrong' } }],
    ['/v1/models', { headers: { authorization: 'Bearer sekret-ke' } }],
    ['/v1/models', { headers: { authorization: 'sekret-key' } }],
    ['/nope', {}],
    ['/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat }],
    ['/generate', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: '{' }],
  ];
  for (const [path, init] of bad) {
    const res = await fetch(s.url + path, init);
    assert.equal(res.status, 401, `${path} ${JSON.stringify(init.headers)}`);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    const json = await res.json();
    assert.equal(json.error.type, 'authentication_error');
    assert.equal(json.error.code, 401);
    assert.match(json.error.message, /Authorization: Bearer/);
  }
  const models = await fetch(`${s.url}/v1/models`, { headers: { authorization: 'Bearer sekret-key' } });
  assert.equal(models.status, 200);
  const ok = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'bearer sekret-key' }, body: chat,
  });
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).choices[0].message.content, 'hi');
});

test('POST bodies must be sent as application/json (415 otherwise)', async () => {
  const s = await serve();
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', undefined]) {
    const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: type ? { 'content-type': type } : {}, body: Buffer.from(chat) });
    assert.equal(res.status, 415, String(type));
    const json = await res.json();
    assert.equal(json.error.type, 'invalid_request_error');
    assert.match(json.error.message, /Content-Type: application\/json/);
  }
  const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'Application/JSON; charset=utf-8' }, body: chat });
  assert.equal(res.status, 200);
});

test('a request body that trickles in slower than the body timeout gets 408 and the connection closed', async () => {
  const s = await serve({ bodyTimeoutMs: 300 });
  const socket = connect(s.port, '127.0.0.1');
  let reply = '';
  socket.on('data', (d) => (reply += d));
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${chat.length}\r\n\r\n${chat.slice(0, 5)}`);
  const timer = setTimeout(() => socket.destroy(), 5000);
  await closed;
  clearTimeout(timer);
  assert.match(reply, /^HTTP\/1\.1 408 /, `reply: ${JSON.stringify(reply)}`);
  assert.match(reply, /request body not received within 300 ms/);
});

test('/get_model_info reports the model folder name, not its absolute path', async () => {
  const s = await serve({ backend: { ...backend, path: '/home/someone/private/models/med-7b' } });
  const info = await (await fetch(`${s.url}/get_model_info`)).json();
  assert.equal(info.model_path, 'med-7b');
  assert.equal(info.tokenizer_path, 'med-7b');
  assert.ok(!JSON.stringify(info).includes('/home/someone'));
});
