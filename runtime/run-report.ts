/**
 * A run's report, gathered from its folder in the artifact store and written as
 * `runs/<runId>/report.html` (the page itself: evaluation/run-report.ts). The step activity
 * records how each step ended (`runs/<runId>/outcomes/<stepId>.json`) and refreshes the report
 * whenever a step finishes, so the page follows the run without the workflow knowing of it.
 *
 * From the Plan (plan.json): the steps, and which eval steps evaluate which trained stage (an
 * `eval.sglang` step whose `model` is `${{ steps.X.outputs.checkpoint }}` of a `train.*` step
 * is the SFT stage, of an `rl.*` step the RL stage). RL is compared with SFT, paired on the same
 * items, when both were evaluated on the same data. A cached step's files are those of the run
 * that made them (its outcome says which).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from '../common/fs.ts';
import type { Plan, PlanStep } from '../dsl/plan.ts';
import type { CurveSeries, ReportCurves, ReportLink, ReportStep, RunReportModel } from '../evaluation/run-report.ts';
import { compareStages, loadStageScores, type GainPair, type StageComparison, type StageScores } from '../evaluation/stages.ts';
import type { ArtifactStore } from './store.ts';

export type OutcomeState = 'succeeded' | 'cached' | 'failed' | 'cancelled';

/** How a step ended, as the step activity saw it. */
export interface StepOutcome {
  step: string;
  state: OutcomeState;
  attempt: number;
  finished_at: string;
  outputs?: Record<string, unknown>;
  /** A cache hit: the run and step whose result (and files) this step reuses. */
  cached_from?: { run: string; step: string };
  /** A failure's message, first line. */
  error?: string;
}

export function writeStepOutcome(store: ArtifactStore, runId: string, outcome: StepOutcome): void {
  writeJsonAtomic(store.outcomeFile(runId, outcome.step), outcome);
}

export function readStepOutcome(store: ArtifactStore, runId: string, stepId: string): StepOutcome | undefined {
  const file = store.outcomeFile(runId, stepId);
  if (!existsSync(file)) return undefined;
  try {
    return readJsonFile<StepOutcome>(file);
  } catch {
    return undefined;
  }
}

/** Where a step's files are: its own folder, or for a cached step the folder of the run that made them. */
export function stepFilesDir(store: ArtifactStore, runId: string, stepId: string, outcome = readStepOutcome(store, runId, stepId)): string {
  const from = outcome?.state === 'cached' ? outcome.cached_from : undefined;
  return from ? store.stepPath(from.run, from.step) : store.stepPath(runId, stepId);
}

/** What an SFT or RL step's curves show: the first field of each list that the rows have. */
const CURVES: Record<'train' | 'rl', { keys: string[]; label: string }[]> = {
  train: [
    { keys: ['loss'], label: 'SFT loss' },
    { keys: ['lr', 'learning_rate'], label: 'learning rate' },
  ],
  rl: [
    { keys: ['reward_mean', 'reward'], label: 'reward (mean)' },
    { keys: ['accuracy'], label: 'accuracy (rollouts)' },
    { keys: ['format_rate'], label: 'format rate' },
    { keys: ['kl'], label: 'KL' },
    { keys: ['response_length'], label: 'response length (tokens)' },
    { keys: ['clip_frac', 'clip_fraction', 'clip_ratio'], label: 'clip fraction' },
  ],
};

/** At most this many points per curve (evenly thinned, the last kept). */
const MAX_POINTS = 600;

/** JSON lines as objects; unreadable lines (a line being written) are left out. */
function readJsonLines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      /* torn or foreign line */
    }
  }
  return out;
}

function thin<T>(points: T[]): T[] {
  if (points.length <= MAX_POINTS) return points;
  const every = Math.ceil(points.length / MAX_POINTS);
  return points.filter((_, i) => i % every === 0 || i === points.length - 1);
}

const family = (uses: string): 'train' | 'rl' | undefined => (uses.startsWith('train.') ? 'train' : uses.startsWith('rl.') ? 'rl' : undefined);

/**
 * A training step's curves from its folder: RL per iteration (iterations.jsonl, else the
 * iteration in metrics.jsonl), SFT per optimizer step (metrics.jsonl). Metrics the files lack are left out.
 */
export function stepCurves(dir: string, step: string, uses: string): ReportCurves | undefined {
  const fam = family(uses);
  if (!fam) return undefined;
  let rows: { x: number; values: Record<string, unknown> }[] = [];
  let x = 'step';
  if (fam === 'rl') {
    x = 'iteration';
    rows = readJsonLines(`${dir}/iterations.jsonl`).filter((r) => typeof r.iteration === 'number').map((r) => ({ x: r.iteration as number, values: r }));
  }
  if (!rows.length) {
    rows = readJsonLines(`${dir}/metrics.jsonl`)
      .filter((r) => r.values && typeof r.values === 'object')
      .map((r) => {
        const values = r.values as Record<string, unknown>;
        const at = fam === 'rl' && typeof values.iteration === 'number' ? values.iteration : r.step;
        return { x: at as number, values };
      })
      .filter((r) => typeof r.x === 'number');
  }
  const series: CurveSeries[] = [];
  for (const want of CURVES[fam]) {
    const key = want.keys.find((k) => rows.some((r) => typeof r.values[k] === 'number' && Number.isFinite(r.values[k])));
    if (!key) continue;
    const points = rows.filter((r) => typeof r.values[key] === 'number' && Number.isFinite(r.values[key])).map((r) => ({ x: r.x, y: r.values[key] as number }));
    series.push({ metric: key, label: want.label, points: thin(points) });
  }
  return series.length ? { step, uses, x, series } : undefined;
}

/** The step whose checkpoint an eval step evaluates (`${{ steps.X.outputs.checkpoint }}`), if any. */
export function evaluatedStep(evalStep: PlanStep, plan: Plan): PlanStep | undefined {
  const model = evalStep.with.model;
  const m = typeof model === 'string' ? /\bsteps\.([A-Za-z_][A-Za-z0-9_-]*)\.outputs\.checkpoint\b/.exec(model) : null;
  return m ? plan.steps.find((s) => s.id === m[1]) : undefined;
}

/**
 * The stage comparison of a run: every eval.sglang step that has finished, named by the stage
 * it evaluates (SFT, RL; another model: the eval step's id); RL over SFT where they share data.
 * Undefined when no evaluation has finished.
 */
export function runStageComparison(store: ArtifactStore, runId: string, plan: Plan = store.readRunManifest<Plan>(runId)): StageComparison | undefined {
  const evals = plan.steps.filter((s) => s.uses === 'eval.sglang');
  const found: { scores: StageScores; fam?: 'train' | 'rl'; data: string; order: number }[] = [];
  const named = new Set<string>();
  for (const e of evals) {
    const outcome = readStepOutcome(store, runId, e.id);
    if (outcome && outcome.state !== 'succeeded' && outcome.state !== 'cached') continue;
    const trained = evaluatedStep(e, plan);
    const fam = trained ? family(trained.uses) : undefined;
    let stage = fam === 'train' ? 'SFT' : fam === 'rl' ? 'RL' : e.id;
    if (named.has(stage)) stage = `${stage} ${trained?.id ?? e.id}`;
    const scores = loadStageScores(stepFilesDir(store, runId, e.id, outcome), stage, trained ? trained.id : e.id, e.id);
    if (!scores) continue;
    named.add(stage);
    const order = trained ? plan.steps.indexOf(trained) : plan.steps.indexOf(e);
    found.push({ scores, fam, data: JSON.stringify([e.with.data, e.with.limit_per_source ?? null]), order });
  }
  if (!found.length) return undefined;
  found.sort((a, b) => a.order - b.order);
  const pairs: GainPair[] = [];
  for (const sft of found.filter((f) => f.fam === 'train')) {
    for (const rl of found.filter((f) => f.fam === 'rl' && f.data === sft.data)) pairs.push({ from: sft.scores.stage, to: rl.scores.stage });
  }
  return compareStages(found.map((f) => f.scores), pairs);
}

/** A path as a link from the run folder: relative, '/'-separated. */
function linkFrom(runDir: string, path: string): string {
  return relative(runDir, path).split(sep).join('/');
}

const STEP_FILES: [file: string, label: string][] = [
  ['step.log', 'log'],
  ['metrics.jsonl', 'metrics.jsonl'],
  ['iterations.jsonl', 'iterations.jsonl'],
  ['report.html', 'evaluation report'],
  ['report.json', 'report.json'],
  ['results.jsonl', 'results.jsonl'],
];

function stepLinks(runDir: string, dir: string, outcome: StepOutcome | undefined): ReportLink[] {
  if (!existsSync(dir)) return [];
  const links: ReportLink[] = [{ label: 'folder', href: `${linkFrom(runDir, dir)}/` }];
  const seen = new Set<string>();
  for (const [file, label] of STEP_FILES) {
    const p = `${dir}${sep}${file}`;
    if (existsSync(p)) {
      links.push({ label, href: linkFrom(runDir, p) });
      seen.add(p);
    }
  }
  // Outputs that are files or folders (a checkpoint, a data file), each once.
  for (const [name, value] of Object.entries(outcome?.outputs ?? {})) {
    if (typeof value !== 'string' || !isAbsolute(value) || seen.has(value) || !existsSync(value)) continue;
    seen.add(value);
    const folder = statSync(value).isDirectory();
    links.push({ label: name, href: `${linkFrom(runDir, value)}${folder ? '/' : ''}` });
  }
  return links;
}

/** Everything the page shows, read from the store. */
export function gatherRunReport(store: ArtifactStore, runId: string): RunReportModel {
  const plan = store.readRunManifest<Plan>(runId);
  const runDir = store.runDir(runId);
  const steps: ReportStep[] = [];
  const curves: ReportCurves[] = [];
  for (const s of plan.steps) {
    const outcome = readStepOutcome(store, runId, s.id);
    const dir = stepFilesDir(store, runId, s.id, outcome);
    const state = outcome?.state ?? (existsSync(store.stepPath(runId, s.id)) ? 'running' : 'not run');
    const note = outcome?.cached_from ? `from the step cache: step ${outcome.cached_from.step} of run ${outcome.cached_from.run}` : outcome?.error;
    steps.push({
      id: s.id, uses: s.uses, state,
      ...(outcome ? { attempt: outcome.attempt, finishedAt: outcome.finished_at } : {}),
      ...(note ? { note } : {}),
      links: stepLinks(runDir, dir, outcome),
    });
    const c = existsSync(dir) ? stepCurves(dir, s.id, s.uses) : undefined;
    if (c) curves.push(c);
  }
  const comparison = runStageComparison(store, runId, plan);
  return {
    runId, pipeline: plan.name, description: plan.description, updatedAt: new Date().toISOString(),
    steps, curves, ...(comparison ? { comparison } : {}),
  };
}

/** Writes runs/<runId>/report.html (atomically) and returns its path. */
export async function writeRunReport(store: ArtifactStore, runId: string): Promise<string> {
  // Vega is loaded on the first report, not when a worker starts.
  const { renderRunReportHtml } = await import('../evaluation/run-report.ts');
  const html = await renderRunReportHtml(gatherRunReport(store, runId));
  const file = store.reportFile(runId);
  writeFileAtomic(file, html);
  return file;
}

/** Refreshes of the same run in this process, one after another (the newest sees every outcome written before it). */
const pending = new Map<string, Promise<unknown>>();

/** writeRunReport, queued behind this process's earlier refresh of the run. */
export function refreshRunReport(store: ArtifactStore, runId: string): Promise<string> {
  const key = `${store.root}\0${runId}`;
  const next = (pending.get(key) ?? Promise.resolve()).catch(() => {}).then(() => writeRunReport(store, runId));
  pending.set(key, next);
  void next.finally(() => {
    if (pending.get(key) === next) pending.delete(key);
  }).catch(() => {});
  return next;
}
