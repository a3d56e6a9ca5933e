/**
 * Serving benchmark: generation tokens/s through the HTTP server (continuous batching)
 * at several concurrency levels, on the tiny preset with random weights, next to the
 * engine's own batched generate() and the scheduler without HTTP at the same batch size
 * (what the server adds), plus the bare HTTP + scheduler cost per request with a
 * no-compute backend.
 *
 *   node --import tsx bench/serve.ts        (BENCH_QUICK=1 for fewer levels)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeJsonAtomic } from '../common/fs.ts';
import { Rng } from '../common/rng.ts';
import { initBackend } from '../engine/backend.ts';
import { loadConfig } from '../engine/config.ts';
import { CausalLM } from '../engine/model.ts';
import { saveModel } from '../engine/checkpoint.ts';
import { generate } from '../engine/generate.ts';
import { loadEngineBackend } from '../evaluation/engine-backend.ts';
import { startServer } from '../evaluation/server.ts';
import { Scheduler } from '../evaluation/scheduler.ts';
import type { Backend, DecodeBatch } from '../evaluation/backend.ts';
import { percentile } from './lib/stats.ts';

const root = join(import.meta.dirname, '..');
const quick = process.env.BENCH_QUICK === '1';

async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

/** `n` requests, `concurrency` at a time, each `newTokens` long from a `promptLen`-token prompt. */
async function load(url: string, n: number, concurrency: number, promptLen: number, newTokens: number, vocab: number) {
  const rng = new Rng(1);
  const prompts = Array.from({ length: n }, () => Array.from({ length: promptLen }, () => rng.int(vocab - 8)));
  const latencies: number[] = [];
  let tokens = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      const r = await post(`${url}/generate`, { input_ids: prompts[i], sampling_params: { temperature: 1, max_new_tokens: newTokens, seed: i } });
      latencies.push((performance.now() - s) / 1000);
      tokens += r.meta_info.completion_tokens;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  return { requests: n, concurrency, tokens, seconds: +secs.toFixed(3), tokensPerSec: +(tokens / secs).toFixed(1), p50LatencyS: +percentile(latencies, 0.5).toFixed(3) };
}

/** A backend that computes nothing: every step returns token 1 at once. */
function emptyBackend(): Backend {
  return {
    name: 'none', path: '-', contextLength: 1 << 20, vocabSize: 2, eosTokenIds: [0],
    encode: (t) => [...t].map(() => 1), decode: (ids) => 'x'.repeat(ids.length), encodeChat: () => [1],
    newBatch(): DecodeBatch {
      const ids = new Set<number>();
      return {
        add: async (s) => void s.forEach((x) => ids.add(x.id)),
        remove: (r) => r.forEach((x) => ids.delete(x)),
        step: async () => [...ids].map((id) => ({ id, token: 1, logprob: 0 })),
      };
    },
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const backendName = await initBackend();
  const config = loadConfig(join(root, 'configs', 'tiny.json'));
  const dir = join(mkdtempSync(join(tmpdir(), 'bench-serve-')), 'tiny');
  const model = new CausalLM(config).initRandom(1);
  await saveModel(model, dir, { tokenizerDir: join(root, 'test/fixtures/parity/tokenizer') });
  model.dispose();
  const backend = await loadEngineBackend(dir);
  const newTokens = quick ? 32 : 64;
  const promptLen = 32;
  const levels = quick ? [1, 8] : [1, 8, 32];
  const http: Record<string, unknown>[] = [];
  const direct: Record<string, unknown>[] = [];
  try {
    for (const c of levels) {
      const server = await startServer({ backend, maxBatch: c });
      await load(server.url, c, c, promptLen, 4, config.vocab_size); // warm-up
      const r = await load(server.url, c * (quick ? 2 : 3), c, promptLen, newTokens, config.vocab_size);
      const steps = server.scheduler.stats.recentBatchSizes;
      http.push({ ...r, meanBatch: +(steps.reduce((a, b) => a + b, 0) / Math.max(1, steps.length)).toFixed(2) });
      await server.close(1000);
      // The engine's own fixed-batch generate, same shapes.
      const rng = new Rng(2);
      const prompts = Array.from({ length: c }, () => Array.from({ length: promptLen }, () => rng.int(config.vocab_size - 8)));
      generate(backend.model, prompts, { temperature: 1, maxNewTokens: 4, seed: 0 });
      const t0 = performance.now();
      const g = generate(backend.model, prompts, { temperature: 1, maxNewTokens: newTokens, seed: 0 });
      const secs = (performance.now() - t0) / 1000;
      const tokens = g.tokens.reduce((a, t) => a + t.length, 0);
      // The scheduler without HTTP, every request arriving at once: continuous batching's own cost.
      const sched = new Scheduler(backend, { maxBatch: c, admitWaitMs: 0 });
      const s0 = performance.now();
      const rs = await Promise.all(prompts.map((p, i) => sched.submit({ promptIds: p, maxNewTokens: newTokens, sampling: { temperature: 1, topP: 1, topK: 0, seed: i } })));
      const ssecs = (performance.now() - s0) / 1000;
      const stoks = rs.reduce((a, x) => a + x.tokenIds.length, 0);
      direct.push({
        batch: c, tokens, seconds: +secs.toFixed(3), tokensPerSec: +(tokens / secs).toFixed(1),
        schedulerTokensPerSec: +(stoks / ssecs).toFixed(1),
      });
      process.stderr.write(`concurrency ${c}: server ${r.tokensPerSec} tok/s, scheduler ${(stoks / ssecs).toFixed(1)} tok/s, generate() ${(tokens / secs).toFixed(1)} tok/s\n`);
    }
  } finally {
    await backend.close?.();
    rmSync(dirname(dir), { recursive: true, force: true });
  }
  // Bare HTTP + scheduler cost.
  const bare = await startServer({ backend: emptyBackend(), maxBatch: 64, admitWaitMs: 0 });
  const n = quick ? 200 : 1000;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next++ < n) await post(`${bare.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 });
  }));
  const bareSecs = (performance.now() - t0) / 1000;
  await bare.close(1000);
  return {
    benchmark: 'serve',
    date: new Date().toISOString(),
    backend: backendName,
    node: process.version,
    preset: 'tiny',
    promptTokens: promptLen,
    newTokens,
    http,
    engineGenerate: direct,
    overheadRequestsPerSec: +(n / bareSecs).toFixed(1),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run();
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `serve-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, result);
  console.log(JSON.stringify(result, null, 2));
  process.stderr.write(`written ${file}\n`);
}
