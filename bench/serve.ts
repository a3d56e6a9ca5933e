/**
 * Serving benchmark: generation tokens/s through the HTTP server (continuous batching) at
 * several concurrency levels, on the tiny preset with random weights, the model decoding in a
 * thread of its own as `doctor-agent serve` has it (DOCTOR_AGENT_DECODE_THREAD=0: on the server's
 * thread), next to the engine's own
 * batched generate() and the scheduler without HTTP at the same batch size (what the server
 * adds), plus the bare HTTP + scheduler cost per request with a no-compute backend.
 *
 * Each level sends 4 × concurrency requests per run, and at least 32, after an untimed warm-up of
 * 3 s at least, in runs of half as many (each client sends its next request when its answer is in), over BENCH_RUNS runs
 * (default 5), taking medians; the server's runs and generate()'s alternate, so that their ratio
 * compares figures from the same minutes, and each generate() run decodes as many sequences as
 * the server's run (batches of the concurrency, one after another). The
 * clients run in a process of their own (bench/lib/serve-client.ts), as clients do. Per level:
 * tokens/s, p50/p99 latency, and time to first token from a run of streamed requests
 * (/v1/completions with stream); `over_concurrency1` and `over_generate` (at the same batch)
 * and, for 32 concurrent requests, `over_generate_batch32`. The same ratios per CPU second of
 * the bench process (`_cpu`: the server's work, steadier on a shared machine than the wall
 * clock) and as the median of each server run over the generate() run right after it (`_paired`).
 * Concurrency 32 over 1 is also measured on two servers with their runs alternating
 * (`over_concurrency1_paired`), since the levels run minutes apart. `decodeThread` compares, at 32,
 * the decode thread with decoding on the server's thread (runs alternating) and how long /health
 * takes to answer meanwhile (asked every 5 ms by the load process).
 *
 * The server has as many decode threads as `doctor-agent serve --replicas auto` gives it (one per
 * core, up to 8; BENCH_REPLICAS=N for another number): the first serves alone until it has 16
 * sequences, so levels 1 and 8 decode on one thread; `decodeThreads` compares, at 32, those
 * threads with a server on one (runs alternating), and `generate()` on as many threads at once,
 * the 32 sequences shared among them (bench/lib/generate-threads.ts: the ceiling with no server),
 * with one thread at 32; each level says how many threads had started.
 *
 * With DOCTOR_AGENT_TORCH_PYTHON set, transformers' own OpenAI-compatible server (`transformers
 * serve`, offline, on the same model folder, CPU) is measured at the same levels as a peer; it
 * needs FastAPI and Uvicorn (`pip install 'transformers[serving]'`), else it is skipped with why.
 *
 *   npm run bench -- serve        (BENCH_QUICK=1 for fewer levels and one run)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeJsonAtomic } from '../common/fs.ts';
import { Rng } from '../common/rng.ts';
import { initBackend } from '../engine/backend.ts';
import * as tf from '../engine/tf.ts';
import { loadConfig } from '../engine/config.ts';
import { CausalLM } from '../engine/model.ts';
import { saveModel } from '../engine/checkpoint.ts';
import { generate } from '../engine/generate.ts';
import { loadEngineBackend } from '../evaluation/engine-backend.ts';
import { loadEngineThread, servingReplicas } from '../evaluation/engine-thread.ts';
import { startServer } from '../evaluation/server.ts';
import { Scheduler } from '../evaluation/scheduler.ts';
import type { Backend, DecodeBatch } from '../evaluation/backend.ts';
import { median, percentile } from './lib/stats.ts';
import { generateOnThreads } from './lib/generate-threads.ts';
import { startLoadClient, type LoadClient, type LoadResult, type LoadSpec } from './lib/serve-client.ts';

const root = join(import.meta.dirname, '..');
const quick = process.env.BENCH_QUICK === '1';
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? (quick ? 1 : 5)));

async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  return res.json();
}

const round = (x: number, d = 3) => +x.toFixed(d);
const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};

/** Median tokens/s of the runs, the latency and TTFT percentiles over all their requests. */
function summarize(level: number, results: LoadResult[], streamed: LoadResult | undefined) {
  const tps = results.map((r) => r.tokensPerSec);
  const mid = results.find((r) => r.tokensPerSec === median(tps)) ?? results[results.length >> 1];
  const lat = results.flatMap((r) => r.latenciesS);
  return {
    requests: mid.requests,
    concurrency: level,
    tokens: mid.tokens,
    seconds: round(mid.seconds),
    tokensPerSec: round(median(tps), 1),
    runsTokensPerSec: tps.map((x) => round(x, 1)),
    p50LatencyS: round(percentile(lat, 0.5)),
    p99LatencyS: round(percentile(lat, 0.99)),
    ...(streamed ? {
      streamTokensPerSec: round(streamed.tokensPerSec, 1),
      ttftP50S: round(percentile(streamed.ttftS, 0.5)),
      ttftP99S: round(percentile(streamed.ttftS, 0.99)),
    } : {}),
  };
}

/** Requests per run at a level: at least 4 × concurrency (and 8). */
const requestsAt = (c: number) => Math.max(32, 4 * c);
/**
 * Every server here decodes up to this many sequences together, `doctor-agent serve`'s default
 * --max-batch, whatever the level's concurrency: each level measures the server as it is run.
 */
const SERVER_MAX_BATCH = 32;

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
  const config = loadConfig(join(root, 'configs', 'tiny.json'));
  const dir = join(mkdtempSync(join(tmpdir(), 'bench-serve-')), 'tiny');
  await initBackend();
  const model = new CausalLM(config).initRandom(1);
  await saveModel(model, dir, { tokenizerDir: join(root, 'test/fixtures/parity/tokenizer') });
  model.dispose();
  // generate() and the bare scheduler run on this thread; the server decodes as `doctor-agent serve`
  // does, in a decode thread (the same backend is picked there: wasm for a model this size), unless
  // DOCTOR_AGENT_DECODE_THREAD=0.
  const backend = await loadEngineBackend(dir);
  const threaded = process.env.DOCTOR_AGENT_DECODE_THREAD !== '0';
  // Decode threads as `doctor-agent serve` has them by default (--replicas auto), or BENCH_REPLICAS.
  const replicas = servingReplicas(process.env.BENCH_REPLICAS ? Number(process.env.BENCH_REPLICAS) : 'auto', dir);
  const served = threaded ? await loadEngineThread(dir, { replicas }) : backend;
  /** Decode threads started so far (1 when the server decodes on its own thread). */
  const startedThreads = () => (threaded ? (served as Awaited<ReturnType<typeof loadEngineThread>>).startedReplicas() : 1);
  const backendName = tf.getBackend();
  const newTokens = quick ? 32 : 64;
  const promptLen = 32;
  const levels = quick ? [1, 8] : [1, 8, 32];
  const rng = new Rng(1);
  const prompts = Array.from({ length: requestsAt(Math.max(...levels)) }, () => Array.from({ length: promptLen }, () => rng.int(config.vocab_size - 8)));
  const http: Record<string, any>[] = [];
  const direct: Record<string, any>[] = [];
  const client = startLoadClient();
  let peer: Record<string, unknown> = {};
  let decodeThread: Record<string, unknown> | null = null;
  let replicaBlock: Record<string, unknown> | null = null;
  /** A server backend with one decode thread, when `served` has more. */
  let single: Awaited<ReturnType<typeof loadEngineThread>> | undefined;
  const pairedC32OverC1: number[] = [];
  /**
   * A server on each of two backends at 32 concurrent requests, runs alternating (which goes first
   * too) after an untimed run on each: each one's tokens/s and /health times (asked every
   * `probeHealthMs` ms, if given) over the runs, and the first over the second run by run.
   */
  const alternateAt32 = async (backends: [Backend, Backend], probeHealthMs?: number) => {
    const both = [await startServer({ backend: backends[0], maxBatch: SERVER_MAX_BATCH }), await startServer({ backend: backends[1], maxBatch: SERVER_MAX_BATCH })];
    const tps: number[][] = [[], []];
    const health: number[][] = [[], []];
    const ratios: number[] = [];
    try {
      const load = (k: number) => client.load({
        url: both[k].url, path: '/generate', prompts: prompts.slice(0, requestsAt(32)), concurrency: 32, newTokens, probeHealthMs,
      });
      await load(0);
      await load(1);
      for (let r = 0; r < runs; r++) {
        const order = r % 2 ? [1, 0] : [0, 1];
        const got: LoadResult[] = [];
        for (const k of order) got[k] = await load(k);
        got.forEach((g, k) => {
          tps[k].push(g.tokensPerSec);
          health[k].push(...(g.healthS ?? []));
        });
        ratios.push(got[0].tokensPerSec / got[1].tokensPerSec);
      }
    } finally {
      for (const server of both) await server.close(1000);
    }
    return { tps, health, ratios };
  };
  try {
    for (const c of levels) {
      const server = await startServer({ backend: served, maxBatch: SERVER_MAX_BATCH });
      const spec = (n: number, tokens: number, stream = false): LoadSpec => ({
        url: server.url, path: stream ? '/v1/completions' : '/generate', prompts: prompts.slice(0, n), concurrency: c, newTokens: tokens, stream,
      });
      // Warm-up, untimed: runs of half as many requests at full length for 3 s at least, so the
      // timed runs see a server that has been serving (JIT-compiled paths, allocator state), as a
      // long-running one is. A decode thread that starts with the load (at 32) reaches its speed
      // over 5-10 s of it (V8 compiling its hot paths while both cores are busy): 8 s more then.
      const threadsBefore = startedThreads();
      const warm = async (ms: number) => {
        for (const w0 = performance.now(); performance.now() - w0 < ms;) await client.load(spec(requestsAt(c) / 2, newTokens));
      };
      await warm(3000);
      if (startedThreads() > threadsBefore) await warm(8000);
      const gen = prompts.slice(0, c);
      generate(backend.model, gen, { temperature: 1, maxNewTokens: 4, seed: 0 });
      const results: LoadResult[] = [];
      const genTps: number[] = [];
      const genSecs: number[] = [];
      // CPU seconds of this process (the server; the clients have their own): steadier than the
      // wall clock on a shared machine. And each server run over the generate() run after it.
      const serverCpuTps: number[] = [];
      const genCpuTps: number[] = [];
      const pairs: number[] = [];
      let genTokens = 0;
      const before = { ...server.scheduler.stats };
      for (let r = 0; r < runs; r++) {
        const cpu0 = process.cpuUsage();
        const res = await client.load(spec(requestsAt(c), newTokens));
        results.push(res);
        serverCpuTps.push(res.tokens / cpuSeconds(cpu0));
        // The engine's own fixed-batch generate, same shapes, between the server's runs.
        const t0 = performance.now();
        const gcpu0 = process.cpuUsage();
        genTokens = 0;
        for (let b = 0; b < requestsAt(c) / c; b++) {
          const g = generate(backend.model, gen, { temperature: 1, maxNewTokens: newTokens, seed: r * 1000 + b });
          genTokens += g.tokens.reduce((a, t) => a + t.length, 0);
        }
        const gcpu = cpuSeconds(gcpu0);
        const secs = (performance.now() - t0) / 1000;
        genSecs.push(secs);
        genTps.push(genTokens / secs);
        genCpuTps.push(genTokens / gcpu);
        pairs.push(res.tokensPerSec / (genTokens / secs));
      }
      const after = server.scheduler.stats;
      const stepCount = after.steps - before.steps;
      const meanBatch = round((after.generatedTokens - before.generatedTokens) / Math.max(1, stepCount), 2);
      const streamed = await client.load(spec(requestsAt(c), newTokens, true));
      await server.close(1000);
      // The scheduler without HTTP, every request arriving at once: continuous batching's own cost.
      const sched = new Scheduler(backend, { maxBatch: c, admitWaitMs: 0 });
      const s0 = performance.now();
      const rs = await Promise.all(gen.map((p, i) => sched.submit({ promptIds: p, maxNewTokens: newTokens, sampling: { temperature: 1, topP: 1, topK: 0, seed: i } })));
      const ssecs = (performance.now() - s0) / 1000;
      const stoks = rs.reduce((a, x) => a + x.tokenIds.length, 0);
      const level = {
        ...summarize(c, results, streamed), meanBatch, steps: stepCount,
        ...(threaded ? { decodeThreads: startedThreads() } : {}),
        cpuTokensPerSec: round(median(serverCpuTps), 1),
        over_generate_paired: round(median(pairs), 2),
        over_generate_cpu: round(median(serverCpuTps) / median(genCpuTps), 2),
      };
      http.push(level);
      direct.push({
        batch: c, tokens: genTokens, seconds: round(median(genSecs)), tokensPerSec: round(median(genTps), 1),
        runsTokensPerSec: genTps.map((x) => round(x, 1)),
        cpuTokensPerSec: round(median(genCpuTps), 1),
        schedulerTokensPerSec: round(stoks / ssecs, 1),
      });
      process.stderr.write(`concurrency ${c}: server ${level.tokensPerSec} tok/s (runs ${level.runsTokensPerSec.join(', ')}; p50 ${level.p50LatencyS} s, p99 ${level.p99LatencyS} s, TTFT p50 ${level.ttftP50S} s), generate() ${direct.at(-1)!.tokensPerSec} tok/s, scheduler ${round(stoks / ssecs, 1)} tok/s; server/generate paired ${level.over_generate_paired}, per CPU second ${level.over_generate_cpu}\n`);
    }
    // Ratios between figures of this run.
    const one = http.find((h) => h.concurrency === 1);
    http.forEach((h, i) => {
      h.over_concurrency1 = one ? round(h.tokensPerSec / one.tokensPerSec, 2) : null;
      h.over_concurrency1_cpu = one ? round(h.cpuTokensPerSec / one.cpuTokensPerSec, 2) : null;
      h.over_generate = round(h.tokensPerSec / direct[i].tokensPerSec, 2);
    });
    // Concurrency 32 over concurrency 1 in the same minutes: runs of the two alternating on one
    // server (the levels above ran one after the other, minutes apart on a machine whose speed drifts).
    if (levels.includes(1) && levels.includes(32)) {
      const server = await startServer({ backend: served, maxBatch: SERVER_MAX_BATCH });
      try {
        const load = (c: number) => client.load({
          url: server.url, path: '/generate', prompts: prompts.slice(0, requestsAt(c)), concurrency: c, newTokens,
        });
        await load(1);
        await load(32);
        for (let r = 0; r < runs; r++) {
          // Which goes first alternates too.
          let c1: LoadResult, c32: LoadResult;
          if (r % 2) {
            c32 = await load(32);
            c1 = await load(1);
          } else {
            c1 = await load(1);
            c32 = await load(32);
          }
          pairedC32OverC1.push(c32.tokensPerSec / c1.tokensPerSec);
        }
      } finally {
        await server.close(1000);
      }
      process.stderr.write(`concurrency 32 over 1, runs alternating: ${pairedC32OverC1.map((x) => round(x, 2)).join(', ')} (median ${round(median(pairedC32OverC1), 2)})\n`);
    }
    // Several decode threads against one at 32 concurrent requests, runs alternating (the threads
    // past the first start with the load, during the untimed first run).
    if (threaded && replicas > 1 && levels.includes(32)) {
      single = await loadEngineThread(dir, { replicas: 1 });
      const { tps, ratios } = await alternateAt32([served, single]);
      // The ceiling: generate() on as many threads at once, the 32 sequences shared among them,
      // against one thread decoding all 32 (rounds alternating).
      const per = Math.ceil(32 / replicas);
      const many: number[] = [];
      const oneGen: number[] = [];
      for (let r = 0; r < Math.max(3, Math.ceil(runs / 2)); r++) {
        many.push(await generateOnThreads(dir, replicas, prompts.slice(0, per), newTokens, 16 * replicas));
        oneGen.push(await generateOnThreads(dir, 1, prompts.slice(0, 32), newTokens, 16));
      }
      replicaBlock = {
        concurrency: 32,
        decodeThreads: replicas,
        tokensPerSec: round(median(tps[0]), 1),
        oneThreadTokensPerSec: round(median(tps[1]), 1),
        overOneThreadPaired: round(median(ratios), 3),
        // generate() with no server: batches of `per` on each thread, and one thread at 32.
        generateThreadsTokensPerSec: round(median(many), 1),
        generateOneThreadTokensPerSec: round(median(oneGen), 1),
        generateThreadsOverOne: round(median(many) / median(oneGen), 3),
        // The server on its threads against that ceiling (different minutes: medians over medians).
        overGenerateThreads: round(median(tps[0]) / median(many), 3),
      };
      process.stderr.write(`${replicas} decode threads over one at 32: ${JSON.stringify(replicaBlock)}\n`);
    }
    // One decode thread against decoding on the server's thread: runs at 32 concurrent requests
    // alternating between a server of each kind, /health asked every 5 ms meanwhile.
    if (threaded && levels.includes(32)) {
      const { tps, health, ratios } = await alternateAt32([single ?? served, backend], 5);
      const ms = (xs: number[]) => ({ p50: round(percentile(xs, 0.5) * 1000, 1), p99: round(percentile(xs, 0.99) * 1000, 1), max: round(percentile(xs, 1) * 1000, 1) });
      decodeThread = {
        concurrency: 32,
        threadTokensPerSec: round(median(tps[0]), 1),
        inProcessTokensPerSec: round(median(tps[1]), 1),
        threadOverInProcessPaired: round(median(ratios), 3),
        healthMs: { thread: ms(health[0]), inProcess: ms(health[1]) },
      };
      process.stderr.write(`decode thread at 32: ${JSON.stringify(decodeThread)}\n`);
    }
    // transformers serve takes text prompts only: the same prompts, decoded.
    peer = await transformersServe(dir, levels, prompts.map((p) => backend.decode(p)), newTokens, client);
  } finally {
    client.close();
    await backend.close?.();
    if (served !== backend) await served.close();
    await single?.close();
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
  const at32 = http.find((h) => h.concurrency === 32);
  const g32 = direct.find((g) => g.batch === 32);
  return {
    benchmark: 'serve',
    date: new Date().toISOString(),
    backend: backendName,
    node: process.version,
    preset: 'tiny',
    promptTokens: promptLen,
    newTokens,
    serverMaxBatch: SERVER_MAX_BATCH,
    runs,
    http,
    engineGenerate: direct,
    over_concurrency1: at32 ? at32.over_concurrency1 : null,
    over_concurrency1_cpu: at32 ? at32.over_concurrency1_cpu : null,
    // The same from runs alternating between a concurrency-1 and a concurrency-32 server: median, and each pair.
    over_concurrency1_paired: pairedC32OverC1.length ? round(median(pairedC32OverC1), 2) : null,
    over_concurrency1_pairs: pairedC32OverC1.map((x) => round(x, 2)),
    over_generate_batch32: at32 && g32 ? round(at32.tokensPerSec / g32.tokensPerSec, 2) : null,
    over_generate_batch32_paired: at32 ? at32.over_generate_paired : null,
    over_generate_batch32_cpu: at32 ? at32.over_generate_cpu : null,
    transformersServe: peer,
    replicas: threaded ? replicas : 0,
    decodeThreads: replicaBlock ?? { skipped: !threaded ? 'DOCTOR_AGENT_DECODE_THREAD=0' : replicas === 1 ? 'one decode thread (BENCH_REPLICAS=1, or a one-core machine)' : 'concurrency 32 not measured' },
    decodeThread: threaded ? decodeThread : { skipped: 'DOCTOR_AGENT_DECODE_THREAD=0: the server decoded on its own thread' },
    overheadRequestsPerSec: round(n / bareSecs, 1),
  };
}

/** A free TCP port on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * transformers' own OpenAI-compatible server on the same folder, offline and on the CPU, at the
 * same levels (one run each of max(8, 2 × concurrency) requests, /v1/completions with the same
 * prompts as text: it refuses token ids), or why not. It runs without its --continuous-batching (paged attention), as it does by default.
 */
async function transformersServe(dir: string, levels: number[], prompts: string[], newTokens: number, client: LoadClient): Promise<Record<string, unknown>> {
  const python = process.env.DOCTOR_AGENT_TORCH_PYTHON;
  const skip = (why: string) => {
    process.stderr.write(`transformers serve: skipped: ${why}\n`);
    return { skipped: why };
  };
  if (!python) return skip('DOCTOR_AGENT_TORCH_PYTHON is not set (a Python with torch and transformers[serving])');
  const probe = spawnSync(python, ['-c', 'import transformers, torch, fastapi, uvicorn; print(transformers.__version__, torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const last = (probe.stderr || probe.error?.message || '').trim().split('\n').pop();
    return skip(`${python} cannot run transformers serve (${last}): it needs FastAPI and Uvicorn, \`pip install 'transformers[serving]'\``);
  }
  const [transformers, torch] = probe.stdout.trim().split(' ');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', HF_HUB_DISABLE_TELEMETRY: '1' };
  const cli = "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; sys.exit(main())";
  const child: ChildProcess = spawn(python, ['-c', cli, 'serve', dir, '--host', '127.0.0.1', '--port', String(port), '--device', 'cpu', '--log-level', 'warning'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  let exited = false;
  child.on('exit', () => { exited = true; });
  try {
    const deadline = Date.now() + 180_000;
    for (;;) {
      if (exited) return skip(`transformers serve exited: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      if (Date.now() > deadline) return skip('transformers serve did not answer /health within 180 s');
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 500));
    }
    const levelsOut: Record<string, unknown>[] = [];
    for (const c of levels) {
      const spec = (n: number, tokens: number, stream = false): LoadSpec => ({
        url, path: '/v1/completions', model: dir, prompts: prompts.slice(0, n), concurrency: c, newTokens: tokens, stream,
      });
      await client.load(spec(c, 4));
      // Fewer requests than for the built-in server: without continuous batching it is slow.
      const r = await client.load(spec(Math.max(8, 2 * c), newTokens));
      const streamed = await client.load(spec(Math.max(4, c), newTokens, true));
      levelsOut.push(summarize(c, [r], streamed));
      process.stderr.write(`transformers serve, concurrency ${c}: ${round(r.tokensPerSec, 1)} tok/s\n`);
    }
    return { transformers, torch, device: 'cpu', http: levelsOut };
  } catch (err) {
    return skip(`transformers serve failed: ${(err as Error).message}; ${stderr.trim().split('\n').slice(-2).join(' | ')}`);
  } finally {
    child.kill();
  }
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
