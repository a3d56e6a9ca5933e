/**
 * The recipe benchmark: pipelines/huatuo-bench.yaml (knowledge-base data → verifiable problems →
 * SFT → GRPO and PPO from the same SFT checkpoint → evaluation of the untrained model, SFT, GRPO
 * and PPO on the same held-out items) run through the real runtime, once per seed, and the
 * stages compared with bootstrap intervals pooled over seeds and held-out sets.
 *
 *   npm run bench -- recipe [--seeds N] [--quick] [--set k=v ...] [--store DIR] [--pass-k K] [--out FILE]
 *
 * Each seed is one run on a Temporal dev server of its own (a fresh artifact store: no step is
 * taken from a cache), with a worker in this process, so every job is a child of this process.
 *
 * - Accuracy per stage: the eval steps' per-item scores (counted as their report.json counts
 *   them: evaluation/stages.ts), pooled over seeds and sets, with a 95% percentile bootstrap.
 * - Gains of GRPO and PPO over SFT: paired bootstrap over the same items (seed, set, item),
 *   as fractions (0.05 = 5 points).
 * - Per RL stage: the step's wall time per iteration, the median rollout + update seconds of an
 *   iteration (iterations.jsonl), the reward curves, and the job's peak RSS: the kernel's
 *   high-water mark of the job process's resident memory (VmHWM in /proc/PID/status), read
 *   every 250 ms while it runs. VmHWM only grows, so the last reading is the peak up to then:
 *   at most the last 250 ms before the job exits go unseen.
 * - pass@k of the SFT model on verifiable problems (the RL training problems): k responses each,
 *   sampled in this process with the built-in engine at the RL steps' temperature and response
 *   length, judged by the rule verifier; the share with at least one correct is what RL could
 *   at best reach by sharpening what SFT already samples.
 *
 * GRPO and PPO run at the same time (both need only the SFT checkpoint), so on a small machine
 * their seconds per iteration include sharing the CPUs with each other.
 *
 * Sizing of the defaults (pipelines/huatuo-bench.yaml): measured, one seed at these settings
 * (800 training items × 3 epochs = 300 SFT steps, 20 GRPO and 20 PPO iterations, 2 × 400 held-out
 * items, tiny preset) took 14.5 minutes on a shared two-core machine (load average about 10,
 * native backend): SFT 145 s (0.48 s a step); then, all at once, GRPO 11.5 s an iteration, PPO
 * 20 s an iteration (each 32 responses), the evaluations of 800 items 5-7 min each (10 min for the
 * untrained model, which answers until max_new_tokens); the longest chain is SFT → PPO → its
 * evaluation. That leaves room under the 30 minutes a seed on a loaded machine.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { readJsonFile } from '../common/fs.ts';
import { compileFile } from '../dsl/compile.ts';
import type { Plan } from '../dsl/plan.ts';
import { bootstrapInterval, excludesZero, pairedBootstrap } from '../evaluation/bootstrap.ts';
import { compareStages, idsInOrder, loadStageScores, type StageScores } from '../evaluation/stages.ts';
import { ensureSearchAttributes } from '../runtime/client.ts';
import { runView, startRun } from '../runtime/runs.ts';
import { ArtifactStore } from '../runtime/store.ts';
import { freePort, PROJECT_ROOT, serverPaths, startServer, stopServer } from '../runtime/temporal.ts';
import type { StepRecord } from '../workflows/types.ts';

export const PIPELINE = 'pipelines/huatuo-bench.yaml';

/** Stage name → its eval step, in the order they are shown. */
export const STAGES = { base: 'eval_base', sft: 'eval_sft', grpo: 'eval_grpo', ppo: 'eval_ppo' } as const;
export type Stage = keyof typeof STAGES;
const RL_STAGES = ['grpo', 'ppo'] as const;

/** Targets the benchmark states: SFT at least twice chance; each RL stage +5 points over SFT with the interval above 0. */
export const TARGETS = { sftOverChance: 2, rlGain: 0.05 } as const;

/** --quick: a few minutes on two cores (one seed), for the test and a smoke check. */
export const QUICK_SET = [
  'train_size=48', 'eval_size=12', 'vocab_size=512', 'sft_epochs=1',
  'grpo_iterations=2', 'grpo_prompts=4', 'ppo_iterations=2', 'ppo_batch_size=8', 'eval_concurrency=12',
];

export interface RecipeOptions {
  seeds: number[];
  quick: boolean;
  /** Pipeline params, `k=v` (after the quick sizes, so they win). */
  set: string[];
  /** Keep the artifact store here (default: a temporary folder, removed at the end). */
  store?: string;
  passAtK: { k: number; problems: number };
  log: (line: string) => void;
}

export function parseArgs(args: readonly string[]): Omit<RecipeOptions, 'log'> {
  let seeds = 3;
  let seedsGiven = false;
  let quick = false;
  const set: string[] = [];
  let store: string | undefined;
  let k: number | undefined;
  const value = (i: number, flag: string) => {
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--quick') quick = true;
    else if (a === '--seeds') {
      seeds = Number(value(i, a));
      seedsGiven = true;
      if (!Number.isInteger(seeds) || seeds < 1) throw new Error(`--seeds must be a positive integer, got ${args[i + 1]}`);
      i++;
    } else if (a === '--set') { set.push(value(i, a)); i++; }
    else if (a === '--store') { store = value(i, a); i++; }
    else if (a === '--pass-k') {
      k = Number(value(i, a));
      if (!Number.isInteger(k) || k < 0) throw new Error(`--pass-k must be a non-negative integer (0: skip), got ${args[i + 1]}`);
      i++;
    } else throw new Error(`unknown option ${a} (recipe takes --quick, --seeds N, --set k=v, --store DIR, --pass-k K)`);
  }
  if (quick && !seedsGiven) seeds = 1;
  return {
    seeds: Array.from({ length: seeds }, (_, i) => i + 1),
    quick,
    set: [...(quick ? QUICK_SET : []), ...set],
    store,
    passAtK: { k: k ?? (quick ? 4 : 8), problems: quick ? 6 : 64 },
  };
}

// ------------------------------------------------------------------ what one seed's run left

export interface IterationRow {
  iteration: number;
  reward_mean: number;
  accuracy: number;
  format_rate?: number;
  kl?: number;
  response_length?: number;
  rollout_s?: number;
  update_s?: number;
}

export interface SeedRun {
  seed: number;
  runId: string;
  /** The run's step folders live here. */
  runDir: string;
  minutes: number;
  /** Step id → wall seconds (start to end of its last attempt). */
  stepSeconds: Record<string, number>;
  /** Step id → peak RSS of its job process, MiB (absent when never sampled). */
  peakRssMiB: Record<string, number>;
  /** The base step's largest absolute difference from a fresh initialisation (undefined: not checked). */
  baseMaxAbsDiff?: number;
  passAtK?: PassAtK;
  backend?: string;
}

export interface PassAtK {
  k: number;
  problems: number;
  /** Mean share of correct responses (pass@1 estimated from k samples). */
  pass_at_1: number;
  /** Share of problems with at least one of k responses correct. */
  pass_at_k: number;
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function readIterations(file: string): IterationRow[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as IterationRow);
}

/** Each stage's per-item scores in one seed's run (keys: stage names). */
export function seedStages(run: Pick<SeedRun, 'runDir'>): Map<Stage, StageScores> {
  const out = new Map<Stage, StageScores>();
  for (const [stage, step] of Object.entries(STAGES) as [Stage, string][]) {
    const s = loadStageScores(join(run.runDir, 'steps', step), stage, stage, step);
    if (!s) throw new Error(`${join(run.runDir, 'steps', step)}: no report.json / results.jsonl (did step ${step} finish?)`);
    out.set(stage, s);
  }
  return out;
}

const interval = (i: { estimate: number; lo: number; hi: number; n: number }) => ({ accuracy: round(i.estimate), ci95: [round(i.lo), round(i.hi)] as [number, number], n: i.n });

/** Aggregates the seeds' runs into the benchmark's result (pure: reads only the run folders). */
export function aggregate(runs: readonly SeedRun[], plan: Pick<Plan, 'params'> & { iterations: { grpo: number; ppo: number } }) {
  const pooled = new Map<Stage, Map<string, number>>(Object.keys(STAGES).map((s) => [s as Stage, new Map()]));
  const options = new Map<string, number>();
  const perSeed = runs.map((run) => {
    const stages = seedStages(run);
    for (const [stage, s] of stages) {
      for (const [source, items] of s.scores) for (const [id, v] of items) pooled.get(stage)!.set(`${run.seed}|${source}|${id}`, v);
      for (const [id, k] of s.options) options.set(`${run.seed}|${id}`, k);
    }
    const cmp = compareStages([...stages.values()], RL_STAGES.map((to) => ({ from: 'sft', to })));
    return {
      seed: run.seed,
      run_id: run.runId,
      minutes: round(run.minutes, 2),
      backend: run.backend ?? null,
      step_seconds: Object.fromEntries(Object.entries(run.stepSeconds).map(([k, v]) => [k, round(v, 1)])),
      base_max_abs_diff_from_init: run.baseMaxAbsDiff ?? null,
      pass_at_k: run.passAtK ?? null,
      sets: Object.fromEntries(cmp.sources.map((src) => [src.source, {
        chance: src.chance !== undefined ? round(src.chance) : null,
        stages: Object.fromEntries(src.stages.map((a) => [a.stage, interval(a.accuracy)])),
        gains: Object.fromEntries(src.gains.map((g) => [`${g.to}_vs_${g.from}`, { mean: round(g.gain.estimate), ci95: [round(g.gain.lo), round(g.gain.hi)], n: g.gain.n, significant: g.significant }])),
      }])),
    };
  });

  const stages = Object.fromEntries([...pooled].map(([stage, m]) => {
    if (!m.size) throw new Error(`no scored items for stage ${stage}`);
    return [stage, interval(bootstrapInterval(idsInOrder(m).map((id) => m.get(id)!), { seed: `recipe:accuracy:${stage}` }))];
  })) as Record<Stage, ReturnType<typeof interval>>;

  const sft = pooled.get('sft')!;
  const gain = Object.fromEntries(RL_STAGES.map((to) => {
    const after = pooled.get(to)!;
    const ids = idsInOrder(sft).filter((id) => after.has(id));
    const g = pairedBootstrap(ids.map((id) => sft.get(id)!), ids.map((id) => after.get(id)!), { seed: `recipe:gain:sft:${to}` });
    return [`${to}_vs_sft`, { mean: round(g.estimate), ci95: [round(g.lo), round(g.hi)] as [number, number], n: g.n, significant: excludesZero(g) }];
  })) as Record<'grpo_vs_sft' | 'ppo_vs_sft', { mean: number; ci95: [number, number]; n: number; significant: boolean }>;

  // Chance over the pooled SFT items: the mean of 1 / number of options.
  const ks = [...sft.keys()].map((key) => { const [seed, , ...rest] = key.split('|'); return options.get(`${seed}|${rest.join('|')}`) ?? 0; });
  const chance = ks.length && ks.every((k) => k > 0) ? round(ks.reduce((a, k) => a + 1 / k, 0) / ks.length) : null;

  const rl = Object.fromEntries(RL_STAGES.map((stage) => {
    const iterations = plan.iterations[stage];
    const curves = runs.map((r) => ({ seed: r.seed, iterations: readIterations(join(r.runDir, 'steps', stage, 'iterations.jsonl')).map(curveRow) }));
    const wall = runs.map((r) => r.stepSeconds[stage]).filter((x) => x !== undefined);
    const inner = curves.flatMap((c) => c.iterations.map((i) => (i.rollout_s ?? 0) + (i.update_s ?? 0)));
    const rss = runs.map((r) => r.peakRssMiB[stage]).filter((x) => x !== undefined);
    return [stage, {
      iterations,
      seconds_per_iteration: wall.length ? round(median(wall) / iterations, 2) : null,
      iteration_seconds_median: inner.length ? round(median(inner), 2) : null,
      peak_rss_mib: rss.length ? Math.max(...rss) : null,
      peak_rss_mib_per_seed: rss,
      reward_curves: curves,
    }];
  }));

  const sftTarget = chance === null ? null : TARGETS.sftOverChance * chance;
  const rlTarget = (s: (typeof RL_STAGES)[number]) => {
    const g = gain[`${s}_vs_sft`];
    return { target: TARGETS.rlGain, value: g.mean, ci95_lo: g.ci95[0], met: g.mean >= TARGETS.rlGain && g.ci95[0] > 0 };
  };
  const targets = {
    sft_at_least_2x_chance: { target: sftTarget, value: stages.sft.accuracy, met: sftTarget !== null && stages.sft.accuracy >= sftTarget },
    grpo_plus_5_points_over_sft: rlTarget('grpo'),
    ppo_plus_5_points_over_sft: rlTarget('ppo'),
  };

  const passes = runs.map((r) => r.passAtK).filter((p): p is PassAtK => !!p);
  return {
    seeds: runs.map((r) => r.seed),
    params: plan.params,
    chance,
    minutes: { per_seed: runs.map((r) => round(r.minutes, 2)), total: round(runs.reduce((a, r) => a + r.minutes, 0), 2) },
    stages,
    gain,
    targets,
    rl,
    pass_at_k: passes.length
      ? { k: passes[0].k, problems: passes[0].problems, pass_at_1: round(passes.reduce((a, p) => a + p.pass_at_1, 0) / passes.length), pass_at_k: round(passes.reduce((a, p) => a + p.pass_at_k, 0) / passes.length), per_seed: passes }
      : null,
    per_seed: perSeed,
    method: {
      accuracy: 'per-item scores of each eval step as its report.json counts them (huatuo scorer), pooled over seeds and held-out sets; 95% percentile bootstrap, 2000 seeded resamples',
      gain: 'paired bootstrap of (stage - SFT) over the same (seed, set, item) triples, as fractions',
      chance: 'mean over the pooled items of 1 / number of options',
      peak_rss: 'VmHWM (/proc/PID/status) of the step\'s job process, read every 250 ms while it runs; the job is a child of the bench process',
      seconds_per_iteration: 'the RL step\'s wall time (model loading and checkpoints included) / iterations; GRPO and PPO run at the same time and share the CPUs',
      base: 'train.sft from the same preset, seed and tokenizer as the SFT step, one step at learning rate 1e-30: the SFT step\'s starting weights (base_max_abs_diff_from_init says how far they are from a fresh initialisation)',
    },
  };
}

export type RecipeResult = ReturnType<typeof aggregate>;

function curveRow(r: IterationRow): IterationRow {
  const out: IterationRow = { iteration: r.iteration, reward_mean: round(r.reward_mean), accuracy: round(r.accuracy) };
  for (const k of ['format_rate', 'kl', 'response_length', 'rollout_s', 'update_s'] as const) if (typeof r[k] === 'number') out[k] = round(r[k]!);
  return out;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : '-'}${Math.abs(100 * x).toFixed(1)}`;

/** The short table printed at the end. */
export function formatTable(r: RecipeResult): string {
  const lines = [
    `recipe benchmark: ${r.seeds.length} seed(s) (${r.seeds.join(', ')}), ${r.minutes.total} min in all (${r.minutes.per_seed.join(', ')} per seed); chance ${r.chance === null ? '?' : pct(r.chance)}`,
    `  stage  accuracy  95% interval       items`,
  ];
  for (const [stage, s] of Object.entries(r.stages)) {
    lines.push(`  ${stage.padEnd(5)}  ${pct(s.accuracy).padStart(8)}  [${pct(s.ci95[0])}, ${pct(s.ci95[1])}]`.padEnd(39) + `  ${s.n}`);
  }
  for (const [name, g] of Object.entries(r.gain)) {
    lines.push(`  gain ${name}: ${pts(g.mean)} points [${pts(g.ci95[0])}, ${pts(g.ci95[1])}] (paired, ${g.n} items)`);
  }
  for (const [stage, x] of Object.entries(r.rl)) {
    lines.push(`  ${stage}: ${x.iterations} iterations, ${x.seconds_per_iteration ?? '?'} s/iteration (step wall time), ${x.iteration_seconds_median ?? '?'} s rollout+update (median), peak RSS ${x.peak_rss_mib ?? '?'} MiB`);
  }
  if (r.pass_at_k) lines.push(`  SFT on ${r.pass_at_k.problems} verifiable problems: pass@1 ${pct(r.pass_at_k.pass_at_1)}, pass@${r.pass_at_k.k} ${pct(r.pass_at_k.pass_at_k)}`);
  lines.push('  targets:');
  const t = r.targets;
  lines.push(`    SFT >= 2 x chance (${t.sft_at_least_2x_chance.target === null ? '?' : pct(t.sft_at_least_2x_chance.target)}): ${pct(t.sft_at_least_2x_chance.value)}  ${t.sft_at_least_2x_chance.met ? 'MET' : 'MISSED'}`);
  for (const s of RL_STAGES) {
    const x = t[`${s}_plus_5_points_over_sft`];
    lines.push(`    ${s.toUpperCase()} >= +5 points over SFT, interval above 0: ${pts(x.value)} points, lower end ${pts(x.ci95_lo)}  ${x.met ? 'MET' : 'MISSED'}`);
  }
  return lines.join('\n');
}

// ------------------------------------------------------------------ running the pipeline

/** Peak RSS of this process's child jobs, by step id, for one run. */
class RssSampler {
  readonly peaks: Record<string, number> = {};
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly runId: string) {
    this.timer = setInterval(() => this.sample(), 250);
    this.timer.unref();
  }

  private children(): number[] {
    try {
      return readdirSync(`/proc/${process.pid}/task`).flatMap((tid) => {
        try {
          return readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        } catch {
          return [];
        }
      });
    } catch {
      return []; // no /proc: no memory figures
    }
  }

  sample(): void {
    const re = new RegExp(`/${this.runId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/steps/([^/\\0]+)/\\.job-spec\\.json`);
    for (const pid of this.children()) {
      try {
        const m = re.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
        if (!m) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm) this.peaks[m[1]] = Math.max(this.peaks[m[1]] ?? 0, Math.round(Number(hwm[1]) / 1024));
      } catch {
        /* the process ended between the listing and the read */
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** pass@k of a checkpoint on the first `problems` verifiable problems, sampled in this process. */
async function passAtK(checkpoint: string, verifiable: string, o: { k: number; problems: number; seed: number; temperature: number; responseLength: number; maxPromptLen: number }): Promise<PassAtK> {
  const [{ initBackend }, { loadModel }, { Tokenizer }, { promptIds, rollout }, { score }, { RuleVerifier }] = await Promise.all([
    import('../engine/backend.ts'), import('../engine/checkpoint.ts'), import('../engine/tokenizer.ts'), import('../rl/rollout.ts'), import('../rl/score.ts'), import('../data/verifiers.ts'),
  ]);
  await initBackend();
  const { model } = await loadModel(checkpoint);
  try {
    const tok = Tokenizer.load(checkpoint);
    const items = readJsonFile<import('../data/formats.ts').VerifiableItem[]>(verifiable).slice(0, o.problems);
    const r = rollout(model, tok, items.map((it) => promptIds(tok, it, o.maxPromptLen)), {
      numGenerations: o.k, temperature: o.temperature, topP: 1, responseLength: o.responseLength, seed: o.seed, batchSize: 32,
    });
    const s = await score(r.texts, items, r.group, new RuleVerifier());
    const any = items.map((_, i) => s.correct.some((c, j) => c && r.group[j] === i));
    return { k: o.k, problems: items.length, pass_at_1: round(s.correct.filter(Boolean).length / s.correct.length), pass_at_k: round(any.filter(Boolean).length / items.length) };
  } finally {
    model.dispose();
  }
}

/** Largest |w - w0| between a checkpoint and a fresh initialisation of its own config with `seed`. */
async function maxDiffFromInit(checkpoint: string, seed: number): Promise<number> {
  const [{ initBackend }, { loadModel }, { CausalLM }] = await Promise.all([import('../engine/backend.ts'), import('../engine/checkpoint.ts'), import('../engine/model.ts')]);
  await initBackend();
  const { model, config } = await loadModel(checkpoint);
  const fresh = new CausalLM(config).initRandom(seed);
  try {
    const a = model.getWeights();
    const b = fresh.getWeights();
    let max = 0;
    for (const [name, w] of a) {
      const w0 = b.get(name);
      if (!w0 || w0.data.length !== w.data.length) return Infinity;
      for (let i = 0; i < w.data.length; i++) max = Math.max(max, Math.abs(w.data[i] - w0.data[i]));
    }
    return max;
  } finally {
    model.dispose();
    fresh.dispose();
  }
}

function seconds(s: StepRecord): number | undefined {
  return s.startedAt && s.finishedAt ? (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000 : undefined;
}

/** The plan of one seed, compiled from the pipeline file with the options' params. */
export function seedPlan(seed: number, set: readonly string[]): Plan {
  return compileFile(join(PROJECT_ROOT, PIPELINE), { cwd: PROJECT_ROOT, set: [...set, `seed=${seed}`] });
}

export async function runRecipe(o: RecipeOptions): Promise<RecipeResult & { store: string | null; cpus: number; load_average_1m: number; quick: boolean }> {
  const plans = o.seeds.map((seed) => seedPlan(seed, o.set)); // every mistake in --set before anything starts
  const root = o.store ?? mkdtempSync(join(tmpdir(), 'doctor-agent-recipe-'));
  mkdirSync(root, { recursive: true });
  const store = new ArtifactStore(root);
  const { info } = await startServer(serverPaths(store), { port: await freePort(), uiPort: await freePort(), ownerPid: process.pid });
  const connection = await Connection.connect({ address: info.address });
  const load0 = loadavg()[0];
  try {
    await ensureSearchAttributes(connection);
    const client = new Client({ connection });
    const { createWorkerSet } = await import('../worker.ts');
    const queues = [...new Set(plans.flatMap((p) => p.steps.map((s) => s.queue)))];
    const workers = await createWorkerSet({ address: info.address, store, queues });
    const running = workers.run();
    const runs: SeedRun[] = [];
    try {
      for (const [i, plan] of plans.entries()) {
        const seed = o.seeds[i];
        const t0 = performance.now();
        const h = await startRun(client, plan, { noCache: true });
        o.log(`seed ${seed}: run ${h.workflowId} (${relative(process.cwd(), store.runDir(h.workflowId)) || store.runDir(h.workflowId)})`);
        const rss = new RssSampler(h.workflowId);
        try {
          await h.result();
        } catch (err) {
          const v = await runView(client, h.workflowId).catch(() => undefined);
          const failed = v?.progress?.steps.filter((s) => s.state === 'failed').map((s) => `${s.id}: ${s.error ?? 'failed'} (log: ${store.stepPath(h.workflowId, s.id)}/step.log)`) ?? [];
          throw new Error(`seed ${seed}: run ${h.workflowId} did not succeed: ${failed.join('; ') || (err as Error).message}`);
        } finally {
          rss.sample();
          rss.stop();
        }
        const minutes = (performance.now() - t0) / 60_000;
        const v = await runView(client, h.workflowId);
        const stepSeconds: Record<string, number> = {};
        for (const s of v.progress?.steps ?? []) { const x = seconds(s); if (x !== undefined) stepSeconds[s.id] = x; }
        const runDir = store.runDir(h.workflowId);
        const step = (id: string) => join(runDir, 'steps', id);
        const backendLine = /engine: TensorFlow\.js backend (\S+)/.exec(existsSync(join(step('sft'), 'step.log')) ? readFileSync(join(step('sft'), 'step.log'), 'utf8') : '');
        const run: SeedRun = { seed, runId: h.workflowId, runDir, minutes, stepSeconds, peakRssMiB: rss.peaks, backend: backendLine?.[1] };
        run.baseMaxAbsDiff = await maxDiffFromInit(join(step('base'), 'checkpoint'), seed);
        if (o.passAtK.k > 0) {
          const grpo = plan.steps.find((s) => s.id === 'grpo')!.with as Record<string, number>;
          run.passAtK = await passAtK(join(step('sft'), 'checkpoint'), join(step('verifiable'), 'verifiable.json'), {
            k: o.passAtK.k, problems: o.passAtK.problems, seed, temperature: grpo.temperature, responseLength: grpo.response_length, maxPromptLen: grpo.max_prompt_len,
          });
        }
        o.log(`seed ${seed}: ${minutes.toFixed(1)} min`);
        runs.push(run);
      }
    } finally {
      workers.shutdown();
      await running;
    }
    const first = plans[0];
    const iters = (id: string) => Number((first.steps.find((s) => s.id === id)!.with as Record<string, unknown>).iterations);
    const result = aggregate(runs, { params: first.params, iterations: { grpo: iters('grpo'), ppo: iters('ppo') } });
    return { quick: o.quick, cpus: cpus().length, load_average_1m: round(Math.max(load0, loadavg()[0]), 2), store: o.store ? root : null, ...result };
  } finally {
    await connection.close().catch(() => {});
    await stopServer(serverPaths(store));
    if (!o.store) rmSync(root, { recursive: true, force: true });
  }
}

export async function run(args: string[] = []): Promise<object> {
  let o: RecipeOptions;
  try {
    o = { ...parseArgs(args), log: (l: string) => console.error(l) };
  } catch (err) {
    console.error(`bench recipe: ${(err as Error).message}`);
    process.exit(2);
  }
  return runRecipe(o);
}

/** Printed after the JSON (bench/main.ts). */
export const summary = formatTable;
