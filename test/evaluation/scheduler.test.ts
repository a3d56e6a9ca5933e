// The scheduler on its own, with the scripted stand-in model (scripted-backend.ts), wrapped
// where a test needs a decode step to fail: the real engine cannot be made to fail on demand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Scheduler, QueueFullError, type GenerationRequest } from '../../evaluation/scheduler.ts';
import { scriptedBackend } from './scripted-backend.ts';

const say = (prompt: string) => /SAY:(.*)/.exec(prompt)?.[1] ?? '';
const req = (text: string, extra: Partial<GenerationRequest> = {}): GenerationRequest => ({
  promptIds: [...Buffer.from(`SAY:${text}`)], maxNewTokens: 100, sampling: { temperature: 0, topP: 1, topK: 0, seed: 0 }, ...extra,
});

test('free places go to the requests in turn: a small request is not queued behind a large one', async () => {
  const backend = scriptedBackend(say);
  const sched = new Scheduler(backend, { maxBatch: 2, admitWaitMs: 0 });
  const order: string[] = [];
  const big = sched.submitAll(Array.from({ length: 8 }, (_, i) => req(`big${i}`)));
  const small = sched.submit(req('small')).then((r) => order.push(r.text));
  void big.then((rs) => order.push(...rs.map((r) => r.text)));
  await Promise.all([big, small]);
  assert.deepEqual(order.slice(0, 1), ['small']);
  // The large request's results come back together and in order.
  assert.deepEqual((await big).map((r) => r.text), Array.from({ length: 8 }, (_, i) => `big${i}`));
  assert.equal(Math.max(...sched.stats.recentBatchSizes), 2);
});

test('a full queue refuses what does not fit; cancelling a request frees its places at once', async () => {
  const backend = scriptedBackend(say, { stepDelayMs: 1 });
  const sched = new Scheduler(backend, { maxBatch: 1, admitWaitMs: 0, maxWaiting: 5 });
  const ac = new AbortController();
  const big = sched.submitAll(Array.from({ length: 5 }, () => req('x'.repeat(200))), { signal: ac.signal });
  await assert.rejects(sched.submit(req('late')), (e) => e instanceof QueueFullError && /queue is full/.test(e.message) && e.retryAfterS >= 1);
  ac.abort();
  await assert.rejects(big, /request cancelled/);
  assert.equal(sched.room, 5);
  assert.equal(sched.stats.cancelled, 5);
  assert.equal((await sched.submit(req('next'))).text, 'next');
});

test('a failing decode step fails every request in flight; the next request gets a fresh batch', async () => {
  const backend = scriptedBackend(say);
  let failNext = true;
  const newBatch = backend.newBatch.bind(backend);
  backend.newBatch = () => {
    const b = newBatch();
    const step = b.step.bind(b);
    b.step = async () => {
      if (failNext) {
        failNext = false;
        throw new Error('device lost');
      }
      return step();
    };
    return b;
  };
  const sched = new Scheduler(backend, { maxBatch: 2, admitWaitMs: 0 });
  const group = sched.submitAll([req('a'), req('b'), req('c')]);
  const single = sched.submit(req('d'));
  await assert.rejects(group, /device lost/);
  await assert.rejects(single, /device lost/);
  assert.equal(sched.room, sched.maxWaiting);
  assert.equal((await sched.submit(req('after'))).text, 'after');
});

test('requests arriving one per step while the batch runs are prefilled together, within joinWaitSteps steps', async () => {
  const admitted = async (joinWaitSteps?: number) => {
    const backend = scriptedBackend(say);
    const sched = new Scheduler(backend, { maxBatch: 8, admitWaitMs: 0, ...(joinWaitSteps === undefined ? {} : { joinWaitSteps }) });
    const late: Promise<unknown>[] = [];
    // Three requests arrive at three successive steps of a running batch.
    const newBatch = backend.newBatch.bind(backend);
    backend.newBatch = () => {
      const b = newBatch();
      const step = b.step.bind(b);
      let steps = 0;
      b.step = async () => {
        if (++steps >= 3 && steps <= 5) late.push(sched.submit(req(`late${steps}`)));
        return step();
      };
      return b;
    };
    const long = sched.submit(req('x'.repeat(30)));
    await long;
    assert.deepEqual((await Promise.all(late)).map((r) => (r as { text: string }).text), ['late3', 'late4', 'late5']);
    return backend.admissions;
  };
  assert.deepEqual(await admitted(), [1, 3], 'one prefill for the three');
  assert.deepEqual(await admitted(0), [1, 1, 1, 1], 'joinWaitSteps 0: each at the next step');
});

test('an empty batch starts a lone request at once, and gathers the requests that keep arriving', async () => {
  const backend = scriptedBackend(say);
  // A wait long enough that a request held for it would fail the time bound below.
  const sched = new Scheduler(backend, { maxBatch: 8, admitWaitMs: 5_000 });
  const t0 = performance.now();
  assert.equal((await sched.submit(req('alone'))).text, 'alone');
  assert.ok(performance.now() - t0 < 2_500, `a lone request is not held for admitWaitMs (${(performance.now() - t0).toFixed(0)} ms)`);
  // Three in one turn, then one more in each of the next two turns: all five start together.
  const rs = [req('a'), req('b'), req('c')].map((r) => sched.submit(r));
  await new Promise((r) => setImmediate(r));
  rs.push(sched.submit(req('d')));
  await new Promise((r) => setImmediate(r));
  rs.push(sched.submit(req('e')));
  assert.deepEqual((await Promise.all(rs)).map((r) => r.text), ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(backend.admissions, [1, 5], 'one prefill for the lone request, one for the five');
});

test('an empty batch does not wait for more requests when those waiting already fill it', async () => {
  const sched = new Scheduler(scriptedBackend(say), { maxBatch: 2, admitWaitMs: 60_000 });
  const t0 = Date.now();
  const rs = await sched.submitAll([req('a'), req('b')]);
  assert.deepEqual(rs.map((r) => r.text), ['a', 'b']);
  assert.ok(Date.now() - t0 < 30_000, 'not held for admitWaitMs');
});
