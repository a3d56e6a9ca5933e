/**
 * The stage comparison: the held-out accuracy of each trained stage (e.g. the SFT checkpoint
 * and the RL checkpoint evaluated on the same items) per source, with a bootstrap interval over
 * the items, the paired gain of one stage over another on the items both answered, and the
 * chance level (1 / number of options, averaged over the source's items).
 *
 * The scores are read back from an eval step's folder (report.json, results.jsonl) and counted
 * as report.json counts them: the report's policy (`max`: per source the better of the first
 * and the last answer), a failed item as not correct, and an empty output left out when the
 * scorer drops those (huatuo). So each stage's accuracy here is the one in its report.json.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile } from '../common/fs.ts';
import { bootstrapInterval, DEFAULT_LEVEL, DEFAULT_RESAMPLES, excludesZero, pairedBootstrap, type Interval } from './bootstrap.ts';
import { evalItems, REPORT_FILE, RESULTS_FILE, type EvalReport } from './client.ts';
import { readResults, type ResultRow } from './results.ts';
import { SCORERS, type Policy } from './scorer.ts';

/** One stage's scores: source → item id → 1 (correct) or 0, and the options of each item. */
export interface StageScores {
  /** Short name, e.g. "SFT" or "RL". */
  stage: string;
  /** What was evaluated, e.g. the step whose checkpoint it is. */
  label: string;
  /** The eval step. */
  step: string;
  scores: Map<string, Map<string, number>>;
  /** Item id → number of options (when known). */
  options: Map<string, number>;
}

/** Which gains to compute: `to` over `from` (stage names). */
export interface GainPair {
  from: string;
  to: string;
}

export interface StageAccuracy {
  stage: string;
  label: string;
  step: string;
  accuracy: Interval;
}

export interface StageGain extends GainPair {
  /** Paired over the items both stages counted. */
  gain: Interval;
  /** The interval leaves out 0. */
  significant: boolean;
}

export interface SourceComparison {
  source: string;
  /** Mean over the source's items of 1 / number of options; absent when the options are unknown. */
  chance?: number;
  stages: StageAccuracy[];
  gains: StageGain[];
}

export interface StageComparison {
  resamples: number;
  level: number;
  stages: { stage: string; label: string; step: string }[];
  sources: SourceComparison[];
}

/** Options listed in a prompt as lines `A. text` (the HuatuoGPT-o1 prompt), for items whose evaluation file is gone. */
export function optionsInPrompt(prompt: string): number {
  return (prompt.match(/^[A-Z]\. /gm) ?? []).length;
}

/** Per source, 1 for the report's policy's correct answer, 0 otherwise; empty outputs left out when the scorer drops them. */
export function scoresOf(rows: readonly ResultRow[], policy: Policy, dropsEmpty: boolean): Map<string, Map<string, number>> {
  const bySource = new Map<string, ResultRow[]>();
  for (const r of rows) {
    if (dropsEmpty && !r.error && r.output === '') continue;
    (bySource.get(r.source) ?? bySource.set(r.source, []).get(r.source)!).push(r);
  }
  const out = new Map<string, Map<string, number>>();
  for (const [source, list] of bySource) {
    const count = (f: (r: ResultRow) => boolean) => list.filter((r) => !r.error && f(r)).length;
    // `max` chooses per source, as the report's accuracy does (a tie: the last answer).
    const useFirst = policy === 'first' || (policy === 'max' && count((r) => r.correct_first) > count((r) => r.correct_last));
    out.set(source, new Map(list.map((r) => [r.id, !r.error && (useFirst ? r.correct_first : r.correct_last) ? 1 : 0])));
  }
  return out;
}

/**
 * Reads an eval step's folder. The options of each item come from the evaluation file the
 * report names, else from the prompts. Undefined when the folder has no report.json or
 * results.jsonl yet.
 */
export function loadStageScores(dir: string, stage: string, label: string, step: string): StageScores | undefined {
  const reportFile = join(dir, REPORT_FILE);
  const resultsFile = join(dir, RESULTS_FILE);
  if (!existsSync(reportFile) || !existsSync(resultsFile)) return undefined;
  const report = readJsonFile<EvalReport>(reportFile);
  const rows = readResults(resultsFile);
  const policy = report.accuracy?.policy ?? 'last';
  const dropsEmpty = (SCORERS[report.scorer] ?? SCORERS.rules).dropsEmpty;
  const options = new Map<string, number>();
  try {
    for (const it of evalItems(report.data)) options.set(it.id, Object.keys(it.item.options).length);
  } catch {
    /* the evaluation file moved or changed: count the options in the prompts */
  }
  for (const r of rows) {
    if (!options.has(r.id)) {
      const k = optionsInPrompt(r.prompt);
      if (k > 0) options.set(r.id, k);
    }
  }
  return { stage, label, step, scores: scoresOf(rows, policy, dropsEmpty), options };
}

/**
 * Item ids of per-item scores in a fixed order (sorted), for resampling: not the order of
 * results.jsonl, which is the order answers finished in and changes with concurrency, so the same
 * answers always give the same intervals.
 */
export function idsInOrder(scores: ReadonlyMap<string, number>): string[] {
  return [...scores.keys()].sort();
}

/** Accuracies with intervals per source and stage, and the paired gains asked for in `pairs`. */
export function compareStages(
  stages: readonly StageScores[],
  pairs: readonly GainPair[],
  o: { resamples?: number; level?: number } = {},
): StageComparison {
  const resamples = o.resamples ?? DEFAULT_RESAMPLES;
  const level = o.level ?? DEFAULT_LEVEL;
  const sourceNames: string[] = [];
  for (const s of stages) for (const name of s.scores.keys()) if (!sourceNames.includes(name)) sourceNames.push(name);
  const byName = new Map(stages.map((s) => [s.stage, s]));
  const sources = sourceNames.map((source): SourceComparison => {
    const present = stages.filter((s) => s.scores.get(source)?.size);
    const accuracies = present.map((s) => {
      const m = s.scores.get(source)!;
      return {
        stage: s.stage, label: s.label, step: s.step,
        accuracy: bootstrapInterval(idsInOrder(m).map((id) => m.get(id)!), { resamples, level, seed: `accuracy:${source}:${s.stage}` }),
      };
    });
    const gains: StageGain[] = [];
    for (const p of pairs) {
      const a = byName.get(p.from)?.scores.get(source);
      const b = byName.get(p.to)?.scores.get(source);
      if (!a || !b) continue;
      const ids = idsInOrder(a).filter((id) => b.has(id));
      if (!ids.length) continue;
      const gain = pairedBootstrap(ids.map((id) => a.get(id)!), ids.map((id) => b.get(id)!), { resamples, level, seed: `gain:${source}:${p.from}:${p.to}` });
      gains.push({ ...p, gain, significant: excludesZero(gain) });
    }
    // Chance over the source's items that any stage counted, each once.
    const ids = new Set(present.flatMap((s) => [...s.scores.get(source)!.keys()]));
    const ks = [...ids].map((id) => present.map((s) => s.options.get(id)).find((k) => k !== undefined) ?? 0);
    const chance = ks.length && ks.every((k) => k > 0) ? ks.reduce((acc, k) => acc + 1 / k, 0) / ks.length : undefined;
    return { source, ...(chance !== undefined ? { chance } : {}), stages: accuracies, gains };
  });
  return { resamples, level, stages: stages.map(({ stage, label, step }) => ({ stage, label, step })), sources };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pts = (x: number) => `${x > 0 ? '+' : x < 0 ? '-' : '±'}${Math.abs(100 * x).toFixed(1)}`;

/** What a gain's interval says, in words. */
export function gainVerdict(g: StageGain): string {
  if (!g.significant) return `the interval includes 0: the gain is not significant at this size (${g.gain.n} items)`;
  return g.gain.estimate > 0 ? `${g.to} is better than ${g.from} on these items (the interval leaves out 0)` : `${g.to} is worse than ${g.from} on these items (the interval leaves out 0)`;
}

/** The comparison as text, for the terminal. */
export function formatStageComparison(c: StageComparison): string {
  const level = Math.round(c.level * 100);
  const lines = [`held-out accuracy by stage (${level}% bootstrap intervals over items, ${c.resamples} resamples; chance = 1 / number of options)`];
  const w = Math.max(...c.stages.map((s) => `${s.stage} (${s.label})`.length), 4);
  for (const s of c.sources) {
    const n = Math.max(0, ...s.stages.map((x) => x.accuracy.n));
    lines.push(`  ${s.source}: ${n} items${s.chance !== undefined ? `, chance ${pct(s.chance)}` : ''}`);
    for (const a of s.stages) {
      lines.push(`    ${`${a.stage} (${a.label})`.padEnd(w)}  ${pct(a.accuracy.estimate).padStart(6)}  [${pct(a.accuracy.lo)}, ${pct(a.accuracy.hi)}]`);
    }
    for (const g of s.gains) {
      lines.push(`    gain of ${g.to} over ${g.from}: ${pts(g.gain.estimate)} points [${pts(g.gain.lo)}, ${pts(g.gain.hi)}] (paired, ${g.gain.n} items); ${gainVerdict(g)}`);
    }
  }
  return lines.join('\n');
}
