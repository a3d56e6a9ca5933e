/**
 * Bootstrap intervals for accuracies over a few dozen held-out items: how far the number
 * could move with another draw of items of the same kind. Percentile intervals from
 * `resamples` resamples of the items with replacement, seeded (common/rng.ts), so the same
 * inputs always give the same interval.
 *
 * `bootstrapInterval` resamples one stage's per-item scores (1 correct, 0 not); `pairedBootstrap`
 * resamples items and takes both stages' scores of each drawn item together, so the interval of
 * the gain reflects that the stages answered the same questions.
 */
import { Rng } from '../common/rng.ts';

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Coverage of the interval (default 0.95). */
  level?: number;
  /** Seed of the resampling (a number, or a string hashed to one; default 0). */
  seed?: number | string;
}

export interface Interval {
  /** The statistic on the items themselves: the mean score (or mean difference). */
  estimate: number;
  lo: number;
  hi: number;
  /** Items the statistic is over. */
  n: number;
}

export const DEFAULT_RESAMPLES = 2000;
export const DEFAULT_LEVEL = 0.95;

/** The q-quantile of sorted values, linear between neighbours (R's type 7, NumPy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new Error('quantile of no values');
  const h = (sorted.length - 1) * q;
  const i = Math.floor(h);
  const j = Math.min(i + 1, sorted.length - 1);
  return sorted[i] + (h - i) * (sorted[j] - sorted[i]);
}

function check(n: number, o: BootstrapOptions): { resamples: number; level: number; rng: Rng } {
  const resamples = o.resamples ?? DEFAULT_RESAMPLES;
  const level = o.level ?? DEFAULT_LEVEL;
  if (n === 0) throw new Error('bootstrap over no items');
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`resamples must be a positive integer, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new Error(`level must be between 0 and 1, got ${level}`);
  return { resamples, level, rng: new Rng(o.seed ?? 0) };
}

/** The mean of each resample of `values` (each drawn index of the items with replacement). */
function resampledMeans(values: readonly number[], resamples: number, rng: Rng): number[] {
  const n = values.length;
  const means = new Array<number>(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[rng.int(n)];
    means[r] = sum / n;
  }
  return means.sort((a, b) => a - b);
}

function interval(values: readonly number[], o: BootstrapOptions): Interval {
  const { resamples, level, rng } = check(values.length, o);
  const means = resampledMeans(values, resamples, rng);
  const tail = (1 - level) / 2;
  const estimate = values.reduce((a, x) => a + x, 0) / values.length;
  return { estimate, lo: quantile(means, tail), hi: quantile(means, 1 - tail), n: values.length };
}

/** Percentile bootstrap interval of the mean of per-item scores (e.g. 1 correct, 0 not). */
export function bootstrapInterval(scores: readonly number[], o: BootstrapOptions = {}): Interval {
  return interval(scores, o);
}

/**
 * Paired bootstrap of the gain `after - before` on the same items (`before[i]` and `after[i]`
 * are one item's scores): items are resampled, each with both its scores.
 */
export function pairedBootstrap(before: readonly number[], after: readonly number[], o: BootstrapOptions = {}): Interval {
  if (before.length !== after.length) throw new Error(`paired bootstrap needs one score of each stage per item: ${before.length} and ${after.length}`);
  return interval(after.map((a, i) => a - before[i]), o);
}

/** Whether an interval leaves out zero: the difference is significant at the interval's level. */
export function excludesZero(i: Pick<Interval, 'lo' | 'hi'>): boolean {
  return i.lo > 0 || i.hi < 0;
}
