// The recipe benchmark (bench/recipe.ts): its statistics on run folders written by hand, its
// options, and its quick mode end to end on a real dev server (pipelines/huatuo-bench.yaml at
// tiny sizes, one seed), whose JSON must have the documented shape with numbers in range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { aggregate, formatTable, parseArgs, QUICK_SET, seedPlan, STAGES, type SeedRun } from '../../bench/recipe.ts';
import { PROJECT_ROOT } from '../../runtime/temporal.ts';

const SOURCES = ['KB_unseen_findings_test', 'KB_unseen_phrasing_test'];
const PROMPT = 'Which one?\nA. one\nB. two\nC. three\nD. four\nE. five';

/** One eval step folder: `correct[i]` says whether item i of each source was answered right. */
function writeEval(dir: string, correct: (source: string, i: number) => boolean, items = 5): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ scorer: 'rules', data: join(dir, 'no-such-eval.json'), accuracy: { policy: 'last' } }));
  const rows = SOURCES.flatMap((source) => Array.from({ length: items }, (_, i) => {
    const ok = correct(source, i);
    return { source, id: `${source}/${i}`, index: i, prompt: PROMPT, output: 'x', first: null, last: null, rule: null, gold: 'A', correct_first: ok, correct_last: ok, correct: ok };
  }));
  writeFileSync(join(dir, 'results.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

function writeSeedRun(root: string, seed: number): SeedRun {
  const runDir = join(root, `run-${seed}`);
  const steps = join(runDir, 'steps');
  writeEval(join(steps, STAGES.base), () => false);
  writeEval(join(steps, STAGES.sft), (_, i) => i < 2); // 2 of 5
  writeEval(join(steps, STAGES.grpo), (_, i) => i < 3); // one more than SFT on every source
  writeEval(join(steps, STAGES.ppo), (_, i) => i < 2); // the same as SFT
  for (const rl of ['grpo', 'ppo']) {
    mkdirSync(join(steps, rl), { recursive: true });
    writeFileSync(join(steps, rl, 'iterations.jsonl'), [1, 2].map((it) => JSON.stringify({ iteration: it, reward_mean: 0.1 * it, accuracy: 0.05 * it, kl: 0.01, rollout_s: 1, update_s: 2 })).join('\n') + '\n');
  }
  return { seed, runId: `r${seed}`, runDir, minutes: 10 + seed, stepSeconds: { grpo: 40, ppo: 60 }, peakRssMiB: { grpo: 500 + seed, ppo: 700 }, baseMaxAbsDiff: 0 };
}

test('aggregate: accuracies pooled over seeds and sets, paired gains over SFT, chance, targets met and missed', () => {
  const root = mkdtempSync(join(tmpdir(), 'recipe-agg-'));
  try {
    const runs = [writeSeedRun(root, 1), writeSeedRun(root, 2)];
    const r = aggregate(runs, { params: { seed: 1 }, iterations: { grpo: 2, ppo: 2 } });
    assert.deepEqual(r.seeds, [1, 2]);
    assert.equal(r.chance, 0.2);
    assert.deepEqual(r.minutes, { per_seed: [11, 12], total: 23 });
    // 2 seeds × 2 sets × 5 items = 20 items per stage.
    assert.deepEqual(Object.fromEntries(Object.entries(r.stages).map(([k, s]) => [k, [s.accuracy, s.n]])), { base: [0, 20], sft: [0.4, 20], grpo: [0.6, 20], ppo: [0.4, 20] });
    for (const s of Object.values(r.stages)) assert.ok(s.ci95[0] <= s.accuracy && s.accuracy <= s.ci95[1]);
    assert.deepEqual(r.stages.base.ci95, [0, 0]);
    // GRPO gains 4 of 20 paired items, loses none: +0.2, interval inside [0, 1] and above 0.
    assert.equal(r.gain.grpo_vs_sft.mean, 0.2);
    assert.equal(r.gain.grpo_vs_sft.n, 20);
    assert.ok(r.gain.grpo_vs_sft.ci95[0] > 0 && r.gain.grpo_vs_sft.ci95[1] <= 1, `${r.gain.grpo_vs_sft.ci95}`);
    assert.deepEqual(r.gain.ppo_vs_sft, { mean: 0, ci95: [0, 0], n: 20, significant: false });
    assert.deepEqual(r.targets.sft_at_least_2x_chance, { target: 0.4, value: 0.4, met: true });
    assert.equal(r.targets.grpo_plus_5_points_over_sft.met, true);
    assert.equal(r.targets.ppo_plus_5_points_over_sft.met, false);
    // RL: wall time per iteration, median rollout + update, the largest peak RSS, every seed's curve.
    assert.equal(r.rl.grpo.seconds_per_iteration, 20);
    assert.equal(r.rl.ppo.seconds_per_iteration, 30);
    assert.equal(r.rl.grpo.iteration_seconds_median, 3);
    assert.equal(r.rl.grpo.peak_rss_mib, 502);
    assert.deepEqual(r.rl.grpo.reward_curves.map((c) => c.iterations.map((i) => i.reward_mean)), [[0.1, 0.2], [0.1, 0.2]]);
    // Per seed and set.
    const set = r.per_seed[1].sets.KB_unseen_phrasing_test;
    assert.equal(set.chance, 0.2);
    assert.deepEqual(set.stages.grpo.accuracy, 0.6);
    assert.equal(set.gains.grpo_vs_sft.mean, 0.2);
    // The table says which targets are met and which are missed.
    const table = formatTable(r);
    assert.match(table, /SFT >= 2 x chance \(40\.0%\): 40\.0%\s+MET/);
    assert.match(table, /GRPO >= \+5 points over SFT.*\+20\.0 points.*MET/);
    assert.match(table, /PPO >= \+5 points over SFT.*\+0\.0 points.*MISSED/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a missing eval step is an error that names the folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'recipe-agg-'));
  try {
    const run = writeSeedRun(root, 1);
    rmSync(join(run.runDir, 'steps', STAGES.ppo), { recursive: true });
    assert.throws(() => aggregate([run], { params: {}, iterations: { grpo: 2, ppo: 2 } }), /steps\/eval_ppo: no report\.json/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('options: 3 seeds by default, --quick is one seed at tiny sizes, mistakes are refused', () => {
  assert.deepEqual(parseArgs([]).seeds, [1, 2, 3]);
  const q = parseArgs(['--quick', '--set', 'eval_size=20']);
  assert.deepEqual(q.seeds, [1]);
  assert.deepEqual(q.set, [...QUICK_SET, 'eval_size=20']);
  assert.deepEqual(parseArgs(['--quick', '--seeds', '2']).seeds, [1, 2]);
  assert.throws(() => parseArgs(['--seeds', '0']), /--seeds must be a positive integer/);
  assert.throws(() => parseArgs(['--bogus']), /unknown option --bogus/);
  // The full-size plan: held-out sets of at least 400 items each, every stage evaluated.
  const plan = seedPlan(7, []);
  const kb = plan.steps.find((s) => s.id === 'kb')!.with as Record<string, unknown>;
  assert.ok(Number(kb.eval_size) >= 400);
  assert.equal(kb.seed, 7);
  for (const step of Object.values(STAGES)) assert.ok(plan.steps.some((s) => s.id === step && s.uses === 'eval.sglang'), step);
});

test('quick mode end to end on a real dev server: the JSON has every field, numbers in range', { timeout: 480_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'recipe-quick-'));
  try {
    const out = join(dir, 'recipe.json');
    const r = await execa(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'bench', 'main.ts'), 'recipe', '--quick', '--out', out], { cwd: PROJECT_ROOT, reject: false, timeout: 450_000 });
    assert.equal(r.exitCode, 0, `${r.stderr.slice(-3000)}`);
    assert.match(r.stdout, /targets:\n\s+SFT >= 2 x chance .*(MET|MISSED)/, 'the table is printed at the end');
    const j = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(j.bench, 'recipe');
    assert.equal(j.quick, true);
    assert.deepEqual(j.seeds, [1]);
    assert.ok(j.chance > 0 && j.chance <= 0.5, `chance ${j.chance}`);
    assert.equal(j.minutes.per_seed.length, 1);
    assert.ok(j.minutes.total > 0 && j.minutes.total === j.minutes.per_seed[0]);
    for (const stage of ['base', 'sft', 'grpo', 'ppo']) {
      const s = j.stages[stage];
      assert.ok(s.accuracy >= 0 && s.accuracy <= 1 && s.ci95[0] <= s.accuracy && s.accuracy <= s.ci95[1], `${stage} ${JSON.stringify(s)}`);
      assert.ok(s.n > 0 && s.n <= 24, `${stage} n ${s.n}`); // 2 sets × 12 items (empty outputs are dropped)
    }
    for (const g of ['grpo_vs_sft', 'ppo_vs_sft']) {
      const x = j.gain[g];
      assert.ok(x.mean >= -1 && x.mean <= 1 && x.ci95[0] <= x.mean && x.mean <= x.ci95[1], `${g} ${JSON.stringify(x)}`);
    }
    for (const t of Object.values(j.targets) as { met: unknown }[]) assert.equal(typeof t.met, 'boolean');
    for (const stage of ['grpo', 'ppo']) {
      const x = j.rl[stage];
      assert.equal(x.iterations, 2);
      assert.ok(x.seconds_per_iteration > 0);
      assert.ok(x.peak_rss_mib > 50 && x.peak_rss_mib < 64_000, `${stage} peak RSS ${x.peak_rss_mib} MiB`);
      assert.deepEqual(x.reward_curves[0].iterations.map((i: { iteration: number }) => i.iteration), [1, 2]);
    }
    assert.deepEqual([j.pass_at_k.k, j.pass_at_k.problems], [4, 6]);
    assert.ok(j.pass_at_k.pass_at_1 <= j.pass_at_k.pass_at_k && j.pass_at_k.pass_at_k <= 1);
    const seed = j.per_seed[0];
    assert.deepEqual(Object.keys(seed.sets).sort(), SOURCES);
    // The untrained baseline is the SFT step's starting point: its weights are a fresh initialisation.
    assert.ok(seed.base_max_abs_diff_from_init < 1e-20, `${seed.base_max_abs_diff_from_init}`);
    for (const step of ['sft', 'grpo', 'ppo', 'eval_base', 'eval_sft', 'eval_grpo', 'eval_ppo']) assert.ok(seed.step_seconds[step] > 0, step);
    assert.equal(j.store, null, 'the temporary store is removed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
