// Several decode threads behind one server (evaluation/engine-thread.ts, `--replicas`): the first
// serves alone until the load asks for the next; requests spread over those started and get the
// same answers as from one thread; a thread that cannot start leaves the others serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadEngineThread, servingReplicas } from '../../evaluation/engine-thread.ts';
import { startServer, type RunningServer } from '../../evaluation/server.ts';
import { replicasArg } from '../../cli/commands/serve.ts';
import { postJson, until } from '../helpers/eval-server.ts';
import { tinyModel } from './tiny-model.ts';

const dir = await tinyModel(29, { initializerRange: 0.3, context: 256 });
after(() => rmSync(dirname(dir), { recursive: true, force: true }));

const body = (i: number) => ({ text: `Case ${i}: a patient with fever and`, sampling_params: { temperature: 1, max_new_tokens: 20, seed: 100 + i, n: 2 }, return_logprob: true });
/** The same tokens, and log-probabilities to float rounding (which depends on a batch's shape on any one thread too). */
function sameAnswers(got: any[], want: any[], what: string): void {
  assert.deepEqual(got.map((o) => o.output_ids), want.map((o) => o.output_ids), what);
  got.forEach((o, k) => o.meta_info.output_token_logprobs.forEach(([lp]: [number], t: number) => {
    const w = want[k].meta_info.output_token_logprobs[t][0];
    assert.ok(Math.abs(lp - w) < 1e-4, `${what}, choice ${k}, token ${t}: ${lp} vs ${w}`);
  }));
}

test('two decode threads: the second starts with the load, requests spread over both, the answers are one thread\'s', async () => {
  const one = await loadEngineThread(dir);
  const two = await loadEngineThread(dir, { replicas: 2, spillAt: 2 });
  const servers: RunningServer[] = [];
  const serve = async (backend: typeof one, maxBatch: number) => {
    const s = await startServer({ backend, maxBatch });
    servers.push(s);
    return s;
  };
  try {
    assert.equal(two.startedReplicas(), 1, 'only the first thread starts with the backend');
    const s1 = await serve(one, 16);
    const warm = await serve(two, 16);
    // One request at a time never starts the second thread.
    for (let i = 0; i < 3; i++) assert.equal((await postJson(warm.url, '/generate', { ...body(i), sampling_params: { ...body(i).sampling_params, n: 1 } })).status, 200);
    assert.equal(two.startedReplicas(), 1);
    // Two choices of one request and a second request: past 2 sequences, the second thread starts.
    await Promise.all([postJson(warm.url, '/generate', body(0)), postJson(warm.url, '/generate', body(1))]);
    await until(() => two.startedReplicas() === 2, 'the second decode thread to start');

    // A fresh server on the two threads: 8 requests of 2 choices at once go 4 and 4 (the
    // largest batch a thread decoded is under the 16 sequences sent), with one thread's answers.
    const s2 = await serve(two, 16);
    const n = 8;
    const [a, b] = await Promise.all([
      Promise.all(Array.from({ length: n }, (_, i) => postJson(s1.url, '/generate', body(i)))),
      Promise.all(Array.from({ length: n }, (_, i) => postJson(s2.url, '/generate', body(i)))),
    ]);
    for (let i = 0; i < n; i++) {
      assert.equal(b[i].status, 200);
      sameAnswers(b[i].json, a[i].json, `request ${i}`);
    }
    assert.ok(a.some((r) => r.json.some((o: any) => o.output_ids.length > 4)), 'some sequence generated more than a few tokens');
    const stats = s2.scheduler.stats;
    assert.equal(stats.completed, 2 * n);
    assert.ok(stats.maxRunning <= n, `each thread decoded at most half the sequences at once (largest batch ${stats.maxRunning})`);
    assert.equal(s1.scheduler.stats.maxRunning, 2 * n, 'one thread decodes them all together');
    assert.equal(s2.scheduler.maxBatch, 32, 'two threads of 16');
  } finally {
    for (const s of servers) await s.close(1000);
    await one.close();
    await two.close();
  }
});

test('a decode thread that cannot start leaves the first serving, with a warning', async () => {
  const copy = join(mkdtempSync(join(tmpdir(), 'replica-broken-')), 'model');
  cpSync(dir, copy, { recursive: true });
  const warnings: string[] = [];
  const backend = await loadEngineThread(copy, { replicas: 2, spillAt: 1, warn: (line) => warnings.push(line) });
  let server: RunningServer | undefined;
  try {
    // The first thread has loaded the weights; the second, started by the load, finds none.
    unlinkSync(join(copy, 'model.safetensors'));
    const url = (server = await startServer({ backend, maxBatch: 8 })).url;
    const got = await Promise.all([0, 1, 2].map((i) => postJson(url, '/generate', body(i))));
    assert.deepEqual(got.map((r) => r.status), [200, 200, 200]);
    await until(() => warnings.length > 0, 'the warning about the second thread');
    assert.match(warnings[0], /^warning: decode thread 2 did not start \(.*model\.safetensors.*\); serving on 1$/);
    assert.equal(backend.startedReplicas(), 1);
    // Later requests are served by the first thread; no second attempt is made.
    assert.equal((await postJson(url, '/generate', body(3))).status, 200);
    assert.equal(warnings.length, 1);
  } finally {
    await server?.close(1000);
    await backend.close();
    rmSync(dirname(copy), { recursive: true, force: true });
  }
});

test('two decode threads drained: every request is refused as the server shutting down, one too large for the queue too', async () => {
  const backend = await loadEngineThread(dir, { replicas: 2 });
  try {
    const sched = backend.scheduler({ maxBatch: 4, maxWaiting: 2 });
    const req = { promptIds: [1, 2, 3], maxNewTokens: 2, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 } };
    await assert.rejects(sched.submitAll([req, req, req, req, req, req, req]), /waiting queue is full/, 'open: too large for the queue');
    await sched.drain();
    await assert.rejects(sched.submit(req), /shutting down/);
    await assert.rejects(sched.submitAll([req, req, req, req, req, req, req]), /shutting down/);
  } finally {
    await backend.close();
  }
});

test('--replicas: a whole number from 1 or auto; auto is one per core, up to 8', () => {
  assert.equal(replicasArg('3'), 3);
  assert.equal(replicasArg('auto'), 'auto');
  for (const bad of ['0', '-1', '1.5', 'two', '']) assert.throws(() => replicasArg(bad), /expected a number of decode threads >= 1, or auto/, bad);
  assert.equal(servingReplicas(undefined, dir), 1);
  assert.equal(servingReplicas(5, dir), 5);
  assert.equal(servingReplicas('auto', dir), Math.min(availableParallelism(), 8), 'a tiny model fits memory many times over');
});
