import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../engine/backend.ts';
import { CausalLM } from '../../engine/model.ts';
import { DecoderSession, type SessionSequence, type SessionToken } from '../../engine/decoder.ts';
import { DecodeThreads, decodeThreads } from '../../engine/parallel-decode.ts';
import { tinyConfig } from './tiny.ts';

// Parallel decoding is for the single-threaded backends: the one the server uses for small models.
before(async () => { await initBackend('wasm'); });

const seq = (id: number, len: number, temperature: number): SessionSequence => ({
  id, promptIds: Array.from({ length: len }, (_, t) => 1 + ((id * 7 + t * 3) % 60)),
  sampling: { temperature, topP: temperature ? 0.9 : 1, topK: 0 }, seed: 100 + id,
});

/** Tokens by sequence id over a scripted run: joins and leaves between steps. */
async function script(session: { add(s: SessionSequence[]): void | Promise<void>; remove(ids: number[]): void; step(): SessionToken[] | Promise<SessionToken[]> }) {
  const out = new Map<number, { tokens: number[]; logprobs: number[] }>();
  const take = (ts: SessionToken[]) => {
    for (const t of ts) {
      const o = out.get(t.id) ?? { tokens: [], logprobs: [] };
      o.tokens.push(t.token);
      o.logprobs.push(t.logprob);
      out.set(t.id, o);
    }
  };
  await session.add([seq(1, 5, 1), seq(2, 9, 0), seq(3, 3, 0.7), seq(4, 12, 1), seq(5, 6, 1)]);
  for (let i = 0; i < 4; i++) take(await session.step());
  session.remove([2, 4]);
  await session.add([seq(6, 4, 1), seq(7, 8, 0)]);
  for (let i = 0; i < 5; i++) take(await session.step());
  session.remove([1]);
  for (let i = 0; i < 3; i++) take(await session.step());
  return out;
}

test('a session over two threads decodes every sequence to the same tokens as one thread', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(3);
  const alone = await script(new DecoderSession(model, { padTokenId: 0 }));
  const threads = await DecodeThreads.start(model, 2, { padTokenId: 0 });
  try {
    assert.equal(threads.count, 2);
    const session = threads.session();
    const spread = await script(session);
    session.dispose();
    assert.deepEqual([...spread.keys()].sort(), [...alone.keys()].sort());
    for (const [id, a] of alone) {
      assert.deepEqual(spread.get(id)!.tokens, a.tokens, `sequence ${id}`);
      spread.get(id)!.logprobs.forEach((lp, i) => assert.ok(Math.abs(lp - a.logprobs[i]) < 1e-5, `sequence ${id} step ${i}: ${lp} vs ${a.logprobs[i]}`));
    }
    // Both threads decoded: the steps returned every live sequence (5, then 5, then 4).
    assert.equal(alone.get(3)!.tokens.length, 12);
    // A second session on the same threads starts empty.
    const again = threads.session();
    assert.deepEqual(await again.step(), []);
    again.dispose();
  } finally {
    await threads.close();
    model.dispose();
  }
});

test('a prefill failing on a thread fails that add only; the session goes on', async () => {
  const model = new CausalLM(tinyConfig()).initRandom(4);
  const threads = await DecodeThreads.start(model, 2, { padTokenId: 0 });
  try {
    const session = threads.session();
    await session.add([seq(1, 4, 0)]);
    // The second sequence goes to the thread with none: there its token 999 is refused.
    await assert.rejects(session.add([{ ...seq(2, 4, 0), promptIds: [1, 999] }]), /decoding thread 1: token id 999 is outside the vocabulary/);
    assert.equal(session.size, 1);
    const tokens = await session.step();
    assert.deepEqual(tokens.map((t) => t.id), [1]);
    await session.add([seq(3, 4, 0)]);
    assert.deepEqual((await session.step()).map((t) => t.id).sort(), [1, 3]);
    session.dispose();
  } finally {
    await threads.close();
    model.dispose();
  }
});

test('the decoding thread count comes from DOCTOR_AGENT_DECODE_THREADS', () => {
  const saved = process.env.DOCTOR_AGENT_DECODE_THREADS;
  try {
    process.env.DOCTOR_AGENT_DECODE_THREADS = '1';
    assert.equal(decodeThreads(), 1);
    process.env.DOCTOR_AGENT_DECODE_THREADS = '0';
    assert.throws(() => decodeThreads(), /DOCTOR_AGENT_DECODE_THREADS=0 is not a thread count/);
    delete process.env.DOCTOR_AGENT_DECODE_THREADS;
    assert.ok(decodeThreads() >= 1 && decodeThreads() <= 4);
  } finally {
    if (saved === undefined) delete process.env.DOCTOR_AGENT_DECODE_THREADS; else process.env.DOCTOR_AGENT_DECODE_THREADS = saved;
  }
});
