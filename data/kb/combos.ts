/**
 * Finding combinations: a vignette shows a subset of a condition's findings. Every
 * subset of 3 or 4 findings is a combination; a fixed share of each condition's
 * combinations is held out for evaluation and never shown in a training vignette.
 * The split depends only on the split seed and the condition, not on the sizes asked.
 */
import { Rng } from '../../common/rng.ts';
import type { Condition } from './schema.ts';

export const COMBO_SIZES = [3, 4] as const;
export const HELD_OUT_FRACTION = 0.25;

/** All subsets of {0..n-1} with the given sizes, each sorted, in lexicographic order. */
export function allCombos(n: number, sizes: readonly number[] = COMBO_SIZES): number[][] {
  const out: number[][] = [];
  const walk = (start: number, size: number, acc: number[]) => {
    if (acc.length === size) { out.push([...acc]); return; }
    for (let i = start; i < n; i++) { acc.push(i); walk(i + 1, size, acc); acc.pop(); }
  };
  for (const k of sizes) if (k <= n) walk(0, k, []);
  return out;
}

/** A stable text key of one condition's finding combination, e.g. "Asthma|0,2,5". */
export function comboKey(condition: string, combo: readonly number[]): string {
  return `${condition}|${[...combo].sort((a, b) => a - b).join(',')}`;
}

export interface ComboSplit {
  train: number[][];
  heldOut: number[][];
}

/** Splits a condition's combinations into training and held-out ones (at least one of each). */
export function splitCombos(c: Condition, splitSeed = 0, fraction = HELD_OUT_FRACTION): ComboSplit {
  const combos = new Rng(`kb-split:${splitSeed}:${c.name}`).shuffle(allCombos(c.findings.length));
  const k = Math.min(combos.length - 1, Math.max(1, Math.round(combos.length * fraction)));
  return { heldOut: combos.slice(0, k), train: combos.slice(k) };
}
