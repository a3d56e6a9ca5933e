/**
 * Engine benchmark: training tokens/s (tiny and small presets, several sequence lengths),
 * generation tokens/s with the KV cache at batch 1, 8 and 32, and the backend's peak
 * matMul rate measured in the same run (model FLOP/s are reported as a share of it).
 * Every figure is the median of several timed runs after untimed warm-up runs (for training at least TRAIN_WARMUP steps, then until the step times stop falling; three runs for generation; as many on both sides); generation figures count
 * new tokens only, the 16-token prompt's prefill included in the time; the decoding-alone
 * figures subtract a run that only prefills and samples the first token. On the wasm backend,
 * generate() also runs with the engine's GEMM on and off, alternating (`wasmGemm`), and on prompts
 * of mixed lengths with attention skipping each row's leading padding and reading it (`paddingSkip`),
 * and prefilled in groups of similar length or in one pass (`prefillSplit`); and RL's sampling on a
 * policy held on tensorflow, by the policy and by its replica thread, and by the replicas of a long
 * run against one (`rlRollout`).
 *
 * The same figures in PyTorch on CPU (bench/torch_reference.py, transformers' model of the same
 * config) at 1 and 2 threads, run interleaved with ours, give the ratio ours / PyTorch. The
 * Python it runs: $DOCTOR_AGENT_TORCH_PYTHON if set, else /tmp/parity-venv/bin/python if present;
 * without one (or without torch in it) the comparison is skipped and the JSON says why.
 *
 *   node --import tsx bench/engine.ts            (or: npm run bench -- engine)
 *   BENCH_QUICK=1 node --import tsx bench/engine.ts   (fewer shapes and runs)
 *   BENCH_ONLY=generation node --import tsx bench/engine.ts   (generation figures alone; BENCH_ONLY=training: training alone)
 *   DOCTOR_AGENT_TORCH_PYTHON=/path/to/python ...     (a Python with `pip install torch transformers`)
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '../engine/tf.ts';
import { writeJsonAtomic } from '../common/fs.ts';
import { initBackendFor } from '../engine/backend.ts';
import { initTrainingBackend, ParallelTrainer } from '../engine/parallel-train.ts';
import { loadConfig, parameterCount, type ModelConfig } from '../engine/config.ts';
import { CausalLM } from '../engine/model.ts';
import { AdamW } from '../engine/optim.ts';
import { trainStep } from '../engine/train.ts';
import { causalLmLoss } from '../engine/loss.ts';
import { generate } from '../engine/generate.ts';
import { prefillGroups, setPrefillSplitting } from '../engine/decoder.ts';
import { median } from './lib/stats.ts';
import { kernelActive, setAttentionKernel, setPaddingSkip } from '../engine/attention-kernel.ts';
import { setWasmGemm, wasmGemmActive } from '../engine/wasm-gemm.ts';
import { completeOnEngine } from '../evaluation/completions.ts';
import { rolloutThread } from '../rl/rollout-thread.ts';

const root = join(import.meta.dirname, '..');
const quick = process.env.BENCH_QUICK === '1';
/** BENCH_ONLY=generation skips training and the attention kernel's comparison; BENCH_ONLY=training skips generation. */
const generationOnly = process.env.BENCH_ONLY === 'generation';
const trainingOnly = process.env.BENCH_ONLY === 'training';

type Times = { wall: number[]; cpu: number[] };
const TORCH_THREADS = [1, 2];
/**
 * Untimed training steps before a shape's timed ones, at least, on both sides: the first steps of a
 * process run slower (compilation of the JavaScript, the allocator's heap growing), and a training
 * job runs thousands. A fresh data-parallel trainer took 10-20 steps to settle (tiny, 32 x 64: 222,
 * 147, 122, ... ms, then 90-100 from the ninth, 87-94 from the fifteenth; the same shape again later
 * in the process 70-90), and with twelve one run still timed the first shape's steps falling (147,
 * 139, 138, 109, 102 ms): so warm-up goes on until the step times stop falling (`settled`).
 */
const TRAIN_WARMUP = 12;
/** Steps back to back in each timed block of the steady-state training comparison (`torchSteady`). */
const STEADY_STEPS = 4;
const DEFAULT_TORCH_PYTHON = '/tmp/parity-venv/bin/python';

/** bench/torch_reference.py in --serve mode: one timed PyTorch run per request. */
export class TorchReference {
  private constructor(private readonly child: ChildProcessWithoutNullStreams, private readonly lines: AsyncIterator<string>, readonly versions: Record<string, string>) {}

  /** Starts the reference, or says why it cannot run. */
  static async start(): Promise<TorchReference | { skipped: string }> {
    const python = process.env.DOCTOR_AGENT_TORCH_PYTHON || (existsSync(DEFAULT_TORCH_PYTHON) ? DEFAULT_TORCH_PYTHON : undefined);
    const howTo = 'to compare, set DOCTOR_AGENT_TORCH_PYTHON to a Python after `pip install torch transformers` (or create /tmp/parity-venv with them)';
    if (!python) return { skipped: `no Python with torch: DOCTOR_AGENT_TORCH_PYTHON is unset and ${DEFAULT_TORCH_PYTHON} does not exist; ${howTo}` };
    const child = spawn(python, [join(root, 'bench', 'torch_reference.py'), '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
    const spawnError = new Promise<string>((res) => child.on('error', (e) => res(e.message)));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next().then((r) => (r.done ? undefined : r.value)), spawnError]);
    try {
      const ready = JSON.parse(first ?? '') as Record<string, string>;
      if (ready.ready) return new TorchReference(child, lines, { torch: ready.torch, transformers: ready.transformers });
    } catch { /* reported below */ }
    child.kill();
    return { skipped: `${python} could not run bench/torch_reference.py (${(first ?? '').trim() || stderr.trim().split('\n').pop() || 'no output'}); ${howTo}` };
  }

  async timed(req: Record<string, unknown>): Promise<{ wall: number; cpu: number }> {
    this.child.stdin.write(JSON.stringify(req) + '\n');
    const r = await this.lines.next();
    const answer = JSON.parse(r.done ? '{"error":"the reference exited"}' : r.value) as { wall: number; cpu: number; error?: string };
    if (answer.error) throw new Error(`bench/torch_reference.py: ${answer.error}`);
    return answer;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/**
 * Whether warm-up runs (milliseconds, in order) have settled: the median of the last five is no more
 * than 5% above the median of the five before, or warm-up has taken SETTLE_MAX_RUNS runs or
 * SETTLE_MAX_MS milliseconds.
 */
function settled(ms: number[]): boolean {
  if (ms.length >= SETTLE_MAX_RUNS || ms.reduce((a, b) => a + b, 0) >= SETTLE_MAX_MS) return true;
  if (ms.length < 10) return false;
  return median(ms.slice(-5)) <= 1.05 * median(ms.slice(-10, -5));
}
const SETTLE_MAX_RUNS = 60;
const SETTLE_MAX_MS = 20_000;

/**
 * Timed runs of ours, each followed by one PyTorch run per thread count (the same work), after
 * `warmup` untimed runs of ours, and with `settle` more until their times stop falling (`settled`);
 * PyTorch warms up as many.
 */
async function interleaved(runs: number, ours: () => void | Promise<unknown>, ref: TorchReference | undefined, req: Record<string, unknown>, warmup = 1, settle = false) {
  const warm: number[] = [];
  for (let i = 0; i < warmup || (settle && !settled(warm)); i++) {
    const t0 = performance.now();
    await ours();
    warm.push(performance.now() - t0);
  }
  // PyTorch warms up as many runs as ours took.
  warmup = warm.length;
  req = warmup === 1 ? req : { ...req, warmup };
  const mine: Times = { wall: [], cpu: [] };
  const theirs = new Map<number, Times>(TORCH_THREADS.map((n) => [n, { wall: [], cpu: [] }]));
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await ours();
    mine.wall.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    mine.cpu.push((c.user + c.system) / 1e6);
    if (!ref) continue;
    for (const threads of TORCH_THREADS) {
      const r = await ref.timed({ ...req, threads });
      theirs.get(threads)!.wall.push(r.wall);
      theirs.get(threads)!.cpu.push(r.cpu);
    }
  }
  return { mine, theirs: ref ? theirs : undefined, warmup };
}

/** PyTorch's rate per thread count and ours over it (by wall clock and by CPU time). */
function comparison(work: number, mine: Times, theirs: Map<number, Times> | undefined) {
  if (!theirs) return undefined;
  return Object.fromEntries([...theirs].map(([threads, t]) => {
    const wall = work / median(t.wall), cpu = work / median(t.cpu);
    return [`threads${threads}`, {
      tokensPerSec: Math.round(wall), tokensPerCpuSecond: Math.round(cpu),
      oursOverTorch: +(work / median(mine.wall) / wall).toFixed(3),
      oursOverTorchCpuTime: +(work / median(mine.cpu) / cpu).toFixed(3),
    }];
  }));
}

/** Wall-clock and CPU seconds of each run (after one warm-up run). */
function timeRuns(runs: number, f: () => void): { wall: number[]; cpu: number[] } {
  f();
  const wall: number[] = [], cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    wall.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall, cpu };
}

/** Plain 2-D matMul rate (GFLOP/s by wall clock and by CPU time), the backend's fast path. */
function peakMatMul(n: number, runs: number): { wall: number; cpu: number } {
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  const t = timeRuns(runs, () => { const c = tf.matMul(a, b); c.dataSync(); c.dispose(); });
  tf.dispose([a, b]);
  return { wall: (2 * n ** 3) / median(t.wall) / 1e9, cpu: (2 * n ** 3) / median(t.cpu) / 1e9 };
}

/**
 * Model FLOPs of one training token, counted the usual way (6 per parameter used in a matMul,
 * the embedding lookup excluded unless tied to the head, plus 12 * layers * heads * head_dim * T
 * for attention scores and mixing), whatever the engine actually executes.
 */
function trainFlopsPerToken(c: ModelConfig, T: number): number {
  const lookupOnly = c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size;
  const matmulParams = parameterCount(c) - lookupOnly;
  const attention = 3 * c.num_hidden_layers * 2 * 2 * c.num_attention_heads * c.head_dim * T;
  return 6 * matmulParams + attention;
}

function randomRows(rng: () => number, B: number, T: number, V: number): number[][] {
  return Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rng() * V)));
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

async function benchTraining(name: string, c: ModelConfig, shapes: Array<[number, number]>, runs: number, threads: number, peak: { wall: number; cpu: number }, ref?: TorchReference) {
  const model = new CausalLM(c).initRandom(1);
  const opt = new AdamW(model.params);
  // What train.sft runs: the step data-parallel over the training threads.
  const trainer = await ParallelTrainer.start(model, opt, threads);
  const rng = lcg(7);
  const results = [];
  for (const [B, T] of shapes) {
    const ids = randomRows(rng, B, T, c.vocab_size);
    const batch = { ids, mask: ids.map((r) => r.map(() => 1)) };
    const step = () => trainer.step([batch], { lr: 1e-4, maxGradNorm: 1 });
    const req = { op: 'train', config: join(root, 'configs', `${name}.json`), batch: B, seqLen: T };
    const { mine: t, theirs, warmup } = await interleaved(runs, step, ref, req, TRAIN_WARMUP, true);
    // The same in blocks of STEADY_STEPS steps back to back on each side, as a training job runs
    // them: a single step right after the other side's run also pays for waking threads and caches.
    const steady = await interleaved(runs, async () => { for (let k = 0; k < STEADY_STEPS; k++) await step(); }, ref, { ...req, steps: STEADY_STEPS });
    const tokensPerSec = (B * T) / median(t.wall);
    const tokensPerCpuSec = (B * T) / median(t.cpu);
    const flops = trainFlopsPerToken(c, T) * tokensPerSec;
    const r = {
      preset: name, batch: B, seqLen: T, threads, warmupSteps: warmup,
      tokensPerSec: Math.round(tokensPerSec), tokensPerCpuSecond: Math.round(tokensPerCpuSec),
      stepSeconds: t.wall.map((s) => +s.toFixed(3)), stepCpuSeconds: t.cpu.map((s) => +s.toFixed(3)),
      modelGflops: +(flops / 1e9).toFixed(2), shareOfPeak: +(flops / 1e9 / peak.wall).toFixed(3),
      shareOfPeakCpuTime: +((trainFlopsPerToken(c, T) * tokensPerCpuSec) / 1e9 / peak.cpu).toFixed(3),
      torch: comparison(B * T, t, theirs),
      // Blocks of STEADY_STEPS steps on each side, interleaved by block.
      steadyTokensPerSec: Math.round((B * T * STEADY_STEPS) / median(steady.mine.wall)),
      torchSteady: comparison(B * T * STEADY_STEPS, steady.mine, steady.theirs),
    };
    process.stderr.write(`train ${name} B=${B} T=${T}: ${r.tokensPerSec} tokens/s, ${r.tokensPerCpuSecond} per CPU second (${r.modelGflops} GFLOP/s, ${(100 * r.shareOfPeak).toFixed(1)}% of peak)${describe(r.torch)}; in blocks of ${STEADY_STEPS} steps ${r.steadyTokensPerSec} tokens/s${describe(r.torchSteady)}\n`);
    results.push(r);
  }
  await trainer.close();
  opt.dispose();
  model.dispose();
  return results;
}

/**
 * Tiny training with attention's WebAssembly kernel on and off (tf.matMul), runs alternating,
 * medians: what the kernel itself gains on this backend.
 */
function benchAttentionKernel(c: ModelConfig, B: number, T: number, runs: number) {
  if (!kernelActive()) return { skipped: `the attention kernel does not serve the ${tf.getBackend()} backend` };
  const model = new CausalLM(c).initRandom(1);
  const opt = new AdamW(model.params);
  const ids = randomRows(lcg(5), B, T, c.vocab_size);
  const mask = ids.map((r) => r.map(() => 1));
  const step = () => { trainStep(model, opt, [{ ids }], (m, b) => causalLmLoss(m, b.ids, mask), { lr: 1e-4, maxGradNorm: 1 }); };
  const times = new Map<boolean, Times>([[true, { wall: [], cpu: [] }], [false, { wall: [], cpu: [] }]]);
  try {
    for (const on of [true, false]) { setAttentionKernel(on); step(); }
    for (let i = 0; i < runs; i++) {
      for (const on of [true, false]) {
        setAttentionKernel(on);
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        step();
        times.get(on)!.wall.push((performance.now() - t0) / 1000);
        const u = process.cpuUsage(c0);
        times.get(on)!.cpu.push((u.user + u.system) / 1e6);
      }
    }
  } finally {
    setAttentionKernel(true);
    opt.dispose();
    model.dispose();
  }
  const rate = (t: Times) => ({ tokensPerSec: Math.round((B * T) / median(t.wall)), tokensPerCpuSecond: Math.round((B * T) / median(t.cpu)) });
  const on = rate(times.get(true)!), off = rate(times.get(false)!);
  const r = { preset: 'tiny', batch: B, seqLen: T, kernel: on, tfMatMul: off, speedupCpuTime: +(on.tokensPerCpuSecond / off.tokensPerCpuSecond).toFixed(2) };
  process.stderr.write(`attention kernel, train tiny B=${B} T=${T}: ${on.tokensPerCpuSecond} tokens per CPU second with it, ${off.tokensPerCpuSecond} with tf.matMul (${r.speedupCpuTime}x)\n`);
  return r;
}

const GENERATION_WARMUP = 3;

async function benchGeneration(name: string, c: ModelConfig, batches: number[], newTokens: number, runs: number, ref?: TorchReference) {
  const model = new CausalLM(c).initRandom(2);
  const rng = lcg(11);
  const results = [];
  for (const B of batches) {
    const prompts = randomRows(rng, B, 16, c.vocab_size);
    const req = { op: 'generate', config: join(root, 'configs', `${name}.json`), batch: B, promptLen: 16 };
    // Three untimed runs first: a fresh process decodes batch 1 slower until V8 has optimized the
    // per-kernel JavaScript (627 and 897 tokens/s over the first 1,300 steps of two processes,
    // 1,000-1,200 later, tiny preset).
    const { mine: t, theirs } = await interleaved(runs, () => { generate(model, prompts, { maxNewTokens: newTokens, temperature: 1, seed: 3 }); }, ref, { ...req, newTokens }, GENERATION_WARMUP);
    // The prompt's prefill and the first token alone, to separate the per-token decoding rate.
    const { mine: p, theirs: theirsPrefill } = await interleaved(runs, () => { generate(model, prompts, { maxNewTokens: 1, temperature: 1, seed: 3 }); }, ref, { ...req, newTokens: 1 }, GENERATION_WARMUP);
    const decodeCpu = Math.max(1e-9, median(t.cpu) - median(p.cpu));
    const decodeWall = Math.max(1e-9, median(t.wall) - median(p.wall));
    const r = {
      preset: name, batch: B, promptLen: 16, newTokens,
      tokensPerSec: Math.round((B * newTokens) / median(t.wall)),
      tokensPerCpuSecond: Math.round((B * newTokens) / median(t.cpu)),
      decodeTokensPerSec: Math.round((B * (newTokens - 1)) / decodeWall),
      decodeTokensPerCpuSecond: Math.round((B * (newTokens - 1)) / decodeCpu),
      prefillSeconds: +median(p.wall).toFixed(3),
      seconds: t.wall.map((s) => +s.toFixed(3)),
      torch: comparison(B * newTokens, t, theirs),
      torchDecode: theirs && theirsPrefill ? decodeComparison(B * (newTokens - 1), t, p, theirs, theirsPrefill) : undefined,
    };
    process.stderr.write(`generate ${name} batch ${B}: ${r.tokensPerSec} tokens/s (${r.tokensPerCpuSecond} per CPU second); decoding alone ${r.decodeTokensPerSec} (${r.decodeTokensPerCpuSecond} per CPU second)${describe(r.torch)}\n`);
    results.push(r);
  }
  model.dispose();
  return results;
}

/**
 * Seconds of `once()` with a switch on and off: one untimed run each, then `runs` of each,
 * alternating (which goes first alternates too).
 */
function onAndOff(runs: number, set: (on: boolean) => void, once: () => void): Map<boolean, number[]> {
  const times = new Map<boolean, number[]>([[true, []], [false, []]]);
  for (const on of [true, false]) { set(on); once(); }
  for (let i = 0; i < runs; i++) {
    for (const on of i % 2 ? [false, true] : [true, false]) {
      set(on);
      const t0 = performance.now();
      once();
      times.get(on)!.push((performance.now() - t0) / 1000);
    }
  }
  return times;
}

/**
 * generate() with the engine's GEMM on wasm on and off (XNNPACK), runs alternating, medians: what
 * the kernel gains at each batch size (engine/wasm-gemm.ts). On the backend generation picks.
 */
function benchWasmGemm(name: string, c: ModelConfig, batches: number[], newTokens: number, runs: number) {
  if (!wasmGemmActive()) return { preset: name, skipped: `the engine's GEMM does not serve the ${tf.getBackend()} backend` };
  const model = new CausalLM(c).initRandom(2);
  const rng = lcg(13);
  const rows = [];
  try {
    for (const B of batches) {
      const prompts = randomRows(rng, B, 32, c.vocab_size);
      const times = onAndOff(runs, setWasmGemm, () => generate(model, prompts, { maxNewTokens: newTokens, temperature: 1, seed: 3 }));
      const rate = (on: boolean) => Math.round((B * newTokens) / median(times.get(on)!));
      const r = { preset: name, batch: B, promptLen: 32, newTokens, kernelTokensPerSec: rate(true), xnnpackTokensPerSec: rate(false), speedup: +(rate(true) / rate(false)).toFixed(3) };
      process.stderr.write(`GEMM on wasm, generate ${name} batch ${B}: ${r.kernelTokensPerSec} tokens/s with the kernel, ${r.xnnpackTokensPerSec} with XNNPACK (${r.speedup}x)\n`);
      rows.push(r);
    }
  } finally {
    setWasmGemm(true);
    model.dispose();
  }
  return rows;
}

/**
 * generate() on prompts of mixed lengths (8 to 200 tokens, left-padded to the longest), each of two
 * switches on and off, runs alternating, medians: attention skipping each row's leading padding in
 * the cache (`paddingSkip`), and the prefill grouping prompts of similar length (`prefillSplit`,
 * engine/decoder.ts), as evaluation's batches of unequal prompts meet them.
 */
function benchMixedPrompts(c: ModelConfig, B: number, newTokens: number, runs: number) {
  const model = new CausalLM(c).initRandom(2);
  const rng = lcg(17);
  const prompts = Array.from({ length: B }, (_, i) => randomRows(rng, 1, 8 + Math.round((192 * i) / Math.max(1, B - 1)), c.vocab_size)[0]);
  const once = () => generate(model, prompts, { maxNewTokens: newTokens, temperature: 1, seed: 3 });
  const rate = (t: number[]) => Math.round((B * newTokens) / median(t));
  const about = { preset: 'tiny', batch: B, promptLens: [8, 200], newTokens };
  try {
    let paddingSkip: Record<string, unknown>;
    if (tf.getBackend() !== 'wasm' || !kernelActive()) paddingSkip = { skipped: `attention reads every position on the ${tf.getBackend()} backend` };
    else {
      const t = onAndOff(runs, setPaddingSkip, once);
      const on = rate(t.get(true)!), off = rate(t.get(false)!);
      paddingSkip = { ...about, skipTokensPerSec: on, everyPositionTokensPerSec: off, speedup: +(on / off).toFixed(3) };
      process.stderr.write(`padding skip, generate tiny batch ${B}, prompts 8-200 tokens: ${on} tokens/s skipping, ${off} reading every position (${paddingSkip.speedup}x)\n`);
    }
    const t = onAndOff(runs, setPrefillSplitting, once);
    const on = rate(t.get(true)!), off = rate(t.get(false)!);
    const prefillSplit = { ...about, groups: prefillGroups(prompts.map((p) => p.length)).length, splitTokensPerSec: on, onePassTokensPerSec: off, speedup: +(on / off).toFixed(3) };
    process.stderr.write(`prefill split, generate tiny batch ${B}, prompts 8-200 tokens: ${on} tokens/s in ${prefillSplit.groups} groups, ${off} in one pass (${prefillSplit.speedup}x)\n`);
    return { paddingSkip, prefillSplit };
  } finally {
    setPaddingSkip(true);
    setPrefillSplitting(true);
    model.dispose();
  }
}

/** The decoding-alone rates (full run minus prefill run) of PyTorch and ours over them. */
function decodeComparison(work: number, mine: Times, minePrefill: Times, theirs: Map<number, Times>, theirsPrefill: Map<number, Times>) {
  const rate = (full: number[], pre: number[]) => work / Math.max(1e-9, median(full) - median(pre));
  return Object.fromEntries([...theirs].map(([threads, t]) => {
    const tp = theirsPrefill.get(threads)!;
    const wall = rate(t.wall, tp.wall), cpu = rate(t.cpu, tp.cpu);
    return [`threads${threads}`, {
      tokensPerSec: Math.round(wall), tokensPerCpuSecond: Math.round(cpu),
      oursOverTorch: +(rate(mine.wall, minePrefill.wall) / wall).toFixed(3),
      oursOverTorchCpuTime: +(rate(mine.cpu, minePrefill.cpu) / cpu).toFixed(3),
    }];
  }));
}

function describe(torch: ReturnType<typeof comparison>): string {
  if (!torch) return '';
  return '; ours/PyTorch ' + Object.entries(torch).map(([k, v]) => `${k} ${v.oursOverTorch} (CPU time ${v.oursOverTorchCpuTime})`).join(', ');
}

/** The PyTorch reference, or why there is none. */
async function startReference(): Promise<{ ref?: TorchReference; about: unknown }> {
  const started = process.env.BENCH_NO_TORCH === '1' ? { skipped: 'BENCH_NO_TORCH=1' } : await TorchReference.start();
  const ref = started instanceof TorchReference ? started : undefined;
  process.stderr.write(ref ? `PyTorch reference: torch ${ref.versions.torch}, threads ${TORCH_THREADS.join(' and ')}, interleaved\n` : `PyTorch comparison skipped: ${(started as { skipped: string }).skipped}\n`);
  return { ref, about: ref ? { ...ref.versions, threads: TORCH_THREADS, script: 'bench/torch_reference.py' } : started };
}

/**
 * Training figures, on the backend and threads train.sft uses (initTrainingBackend): in this
 * process, before anything else loads TensorFlow.js.
 */
async function runTraining(tiny: ModelConfig, small: ModelConfig, runs: number) {
  const { backend, threads } = await initTrainingBackend();
  const peak = peakMatMul(1024, runs);
  process.stderr.write(`training: ${threads} thread(s); peak matMul 1024^3: ${peak.wall.toFixed(2)} GFLOP/s (${peak.cpu.toFixed(2)} per CPU second)\n`);
  const { ref, about } = await startReference();
  try {
    const attentionKernel = benchAttentionKernel(tiny, 32, 64, runs);
    const training = [
      // Tiny steps take a tenth of a second: nine timed runs each (small: three) steady the medians.
      ...(await benchTraining('tiny', tiny, quick ? [[16, 128]] : [[32, 64], [16, 128], [8, 256]], quick ? runs : 2 * runs - 1, threads, peak, ref)),
      ...(await benchTraining('small', small, quick ? [[8, 128]] : [[16, 64], [8, 128]], 3, threads, peak, ref)),
    ];
    return { backend, threads, peak, torchReference: about, attentionKernel, training };
  } finally {
    ref?.close();
  }
}

/** Generation figures, each preset on the backend the engine picks for its size (initBackendFor('generation')). */
async function runGeneration(tiny: ModelConfig, small: ModelConfig, runs: number) {
  const { ref, about } = await startReference();
  const generationBackends: Record<string, string> = {};
  try {
    const generation = [];
    const wasmGemm = [];
    for (const [name, c, tokens, n] of [['tiny', tiny, quick ? 16 : 64, runs], ['small', small, quick ? 16 : 32, 3]] as const) {
      generationBackends[name] = await initBackendFor('generation', parameterCount(c));
      generation.push(...(await benchGeneration(name, c, [1, 8, 32], tokens, n, ref)));
      wasmGemm.push(benchWasmGemm(name, c, name === 'tiny' ? [1, 8, 32] : [8, 32], tokens, name === 'tiny' ? 2 * n : n));
    }
    await initBackendFor('generation', parameterCount(tiny));
    const { paddingSkip, prefillSplit } = benchMixedPrompts(tiny, 32, quick ? 32 : 128, 2 * runs);
    const rlRollout = await benchRlRollout(tiny, quick ? 64 : 160, runs);
    return { generationBackends, torchReference: about, generation, wasmGemm: wasmGemm.flat(), paddingSkip, prefillSplit, rlRollout };
  } finally {
    ref?.close();
  }
}

/**
 * RL's sampling (rl/rollout-thread.ts): a tiny policy on tensorflow, as rl.grpo holds it, samples
 * 8 prompts x 4 generations of up to `tokens` tokens at temperature 0.7 itself and through its
 * replica thread (wasm), runs alternating after one untimed each (the thread's start is timed
 * apart). Then the replicas a long run gets (one per core, up to 8: the 32 rows in two slices)
 * against one, each warmed by 3 s of rollouts first (a fresh thread decodes slowly for its first
 * second or two), runs alternating; the same rollouts on both. Tokens/s count the sampled tokens.
 */
async function benchRlRollout(c: ModelConfig, tokens: number, runs: number): Promise<Record<string, unknown>> {
  if ((await initBackendFor('rl')) !== 'tensorflow') return { skipped: 'no tensorflow backend: RL samples on its policy\'s own backend' };
  const policy = new CausalLM(c).initRandom(7);
  const t0 = performance.now();
  const thread = rolloutThread(policy);
  if (!thread) {
    policy.dispose();
    return { skipped: 'no rollout thread for this policy (DOCTOR_AGENT_ROLLOUT_THREAD=0?)' };
  }
  let pool: ReturnType<typeof rolloutThread>;
  try {
    const prompts = Array.from({ length: 8 }, (_, i) => Array.from({ length: 48 }, (_, j) => 3 + ((i * 131 + j * 17) % (c.vocab_size - 3))));
    const req = (seed: number) => ({ prompts, n: 4, maxTokens: tokens, temperature: 0.7, topP: 1, seed, stopTokenIds: [] });
    await thread.complete(req(0));
    const startS = (performance.now() - t0) / 1000;
    completeOnEngine(policy, req(0));
    const count = (r: { tokens: number[] }[]) => r.reduce((a, x) => a + x.tokens.length, 0);
    const here: number[] = [], there: number[] = [];
    for (let r = 1; r <= runs; r++) {
      let t = performance.now();
      const a = completeOnEngine(policy, req(r));
      here.push(count(a) / ((performance.now() - t) / 1000));
      t = performance.now();
      const b = await thread.complete(req(r));
      there.push(count(b) / ((performance.now() - t) / 1000));
    }
    // The replicas of a long run against the one above (it sampled 32 rows in one slice; one replica
    // samples the long run's two slices one after the other, as a run on one core does).
    pool = rolloutThread(policy, { rows: 32, tokens: Number.MAX_SAFE_INTEGER })!;
    process.env.DOCTOR_AGENT_ROLLOUT_THREADS = '1';
    const single = rolloutThread(policy, { rows: 32 })!;
    delete process.env.DOCTOR_AGENT_ROLLOUT_THREADS;
    const one: number[] = [], many: number[] = [];
    let same = true;
    try {
      for (const p of [pool, single]) for (let w = performance.now(), s = 100; performance.now() - w < 3000; ) await p.complete(req(s++));
      for (let r = 1; r <= Math.max(runs, 5); r++) {
        let t = performance.now();
        const a = await single.complete(req(r));
        one.push(count(a) / ((performance.now() - t) / 1000));
        t = performance.now();
        const b = await pool.complete(req(r));
        many.push(count(b) / ((performance.now() - t) / 1000));
        same &&= JSON.stringify(a) === JSON.stringify(b);
      }
    } finally {
      await single.close();
    }
    const out = {
      preset: 'tiny', rows: 32, maxTokens: tokens, temperature: 0.7, replicaBackend: thread.backend(),
      policyTokensPerSec: Math.round(median(here)), replicaTokensPerSec: Math.round(median(there)),
      speedup: +(median(there) / median(here)).toFixed(2), threadStartSeconds: +startS.toFixed(2),
      replicas: pool.replicas(), oneReplicaSlicedTokensPerSec: Math.round(median(one)), replicasTokensPerSec: Math.round(median(many)),
      replicasOverOne: +(median(many) / median(one)).toFixed(2), replicasSameRollouts: same,
    };
    process.stderr.write(`RL rollout, tiny, 32 rows of up to ${tokens} tokens: ${out.policyTokensPerSec} tokens/s on the policy (tensorflow), ${out.replicaTokensPerSec} on its replica thread (${out.replicaBackend}), ${out.speedup}x; ` +
      `${out.replicas} replicas ${out.replicasTokensPerSec} against one ${out.oneReplicaSlicedTokensPerSec} (${out.replicasOverOne}x, same rollouts: ${same})\n`);
    return out;
  } finally {
    await thread.close();
    await pool?.close();
    policy.dispose();
  }
}

/**
 * Generation in a process of its own (BENCH_ONLY=generation): the training one has set
 * TensorFlow's thread counts for data-parallel training, which generation does not use.
 */
function generationInChild(): Awaited<ReturnType<typeof runGeneration>> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-engine-'));
  const out = join(dir, 'generation.json');
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_ONLY: 'generation', BENCH_RESULT_FILE: out };
    delete env.TF_NUM_INTRAOP_THREADS;
    delete env.TF_NUM_INTEROP_THREADS;
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`the generation benchmark's process failed (exit ${r.status})`);
    return JSON.parse(readFileSync(out, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const tiny = loadConfig(join(root, 'configs', 'tiny.json'));
  const small = loadConfig(join(root, 'configs', 'small.json'));
  const runs = quick ? 3 : 5;
  const t = generationOnly ? undefined : await runTraining(tiny, small, runs);
  const g = trainingOnly ? undefined : t ? generationInChild() : await runGeneration(tiny, small, runs);
  const generation = g?.generation ?? [];
  const ratio = (preset: string, key: 'tokensPerSec' | 'tokensPerCpuSecond' | 'decodeTokensPerSec' | 'decodeTokensPerCpuSecond') => {
    const rows = generation.filter((r) => r.preset === preset);
    if (rows.length === 0) return undefined;
    return +(rows.find((r) => r.batch === 32)![key] / rows.find((r) => r.batch === 1)![key]).toFixed(2);
  };
  return {
    benchmark: 'engine',
    date: new Date().toISOString(),
    // The training backend; generation's per preset in generationBackends.
    backend: t?.backend,
    trainingThreads: t?.threads,
    generationBackends: g?.generationBackends,
    node: process.version,
    params: { tiny: parameterCount(tiny), small: parameterCount(small) },
    // Wall-clock figures depend on what else the machine runs.
    loadAverage: loadavg(),
    // Measured on the training backend with its thread settings (one thread each when data-parallel).
    peakMatMulGflops: t ? +t.peak.wall.toFixed(2) : undefined,
    peakMatMulGflopsPerCpuSecond: t ? +t.peak.cpu.toFixed(2) : undefined,
    // Ratios ours / PyTorch (CPU, same model, batch and lengths, interleaved runs) sit in each
    // figure's `torch` entry, per PyTorch thread count.
    torchReference: t?.torchReference ?? g?.torchReference,
    // Tiny training with attention's kernel on and off, alternating (see engine/attention-kernel.ts).
    attentionKernel: t?.attentionKernel,
    // generate() with the engine's GEMM on wasm and with XNNPACK, alternating (see engine/wasm-gemm.ts).
    wasmGemm: g?.wasmGemm,
    // generate() on prompts of mixed lengths, attention skipping leading padding or not, alternating.
    paddingSkip: g?.paddingSkip,
    // The same prompts prefilled in groups of similar length or in one pass, alternating.
    prefillSplit: g?.prefillSplit,
    // RL's sampling on a policy held on tensorflow and on its replica thread, alternating.
    rlRollout: g?.rlRollout,
    training: t?.training ?? [],
    generation,
    batch32OverBatch1: { tiny: ratio('tiny', 'tokensPerSec'), small: ratio('small', 'tokensPerSec') },
    batch32OverBatch1CpuTime: { tiny: ratio('tiny', 'tokensPerCpuSecond'), small: ratio('small', 'tokensPerCpuSecond') },
    decodeBatch32OverBatch1: { tiny: ratio('tiny', 'decodeTokensPerSec'), small: ratio('small', 'decodeTokensPerSec') },
    decodeBatch32OverBatch1CpuTime: { tiny: ratio('tiny', 'decodeTokensPerCpuSecond'), small: ratio('small', 'decodeTokensPerCpuSecond') },
    targets: { tinyTrainingTokensPerSec: 3000, batch32OverBatch1: 8 },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.env.BENCH_RESULT_FILE) {
  // The generation half, run by generationInChild.
  const tiny = loadConfig(join(root, 'configs', 'tiny.json'));
  const small = loadConfig(join(root, 'configs', 'small.json'));
  writeJsonAtomic(process.env.BENCH_RESULT_FILE, await runGeneration(tiny, small, quick ? 3 : 5));
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run();
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeJsonAtomic(file, result);
  console.log(JSON.stringify(result, null, 2));
  process.stderr.write(`written ${file}\n`);
}
