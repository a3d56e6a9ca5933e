/**
 * Advantage estimators, each a small pure function on plain numbers, registered by name.
 *
 *   grpo  group-relative: each response's score minus its group's mean, divided by
 *         std + eps, where `scale` (TRL's scale_rewards) picks the std: group (the group's,
 *         unbiased; the default), batch (that of all the scores given, unbiased) or none
 *         (centred only); one value for all its tokens.
 *   gae   generalised advantage estimation over a response's tokens:
 *           delta_t = r_t + gamma * V_{t+1} - V_t      (V after the last token is 0)
 *           A_t     = delta_t + gamma * lam * A_{t+1}
 *         returns R_t = A_t + V_t (the value targets).
 */

export const REWARD_SCALINGS = ['group', 'batch', 'none'] as const;
export type RewardScaling = (typeof REWARD_SCALINGS)[number];

/** Unbiased standard deviation; 1 for fewer than two values (they are centred to 0 anyway). */
function std(xs: number[], mean: number): number {
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 1;
}

/**
 * Group-normalised scores: responses with the same group id are compared with each other.
 * `normalizeStd: false` is `scale: 'none'`.
 */
export function grpoAdvantages(scores: number[], groups: number[], opts: { eps?: number; scale?: RewardScaling; normalizeStd?: boolean } = {}): number[] {
  if (scores.length !== groups.length) throw new Error(`grpoAdvantages: ${scores.length} scores but ${groups.length} group ids`);
  const eps = opts.eps ?? 1e-6;
  const scale: RewardScaling = opts.scale ?? (opts.normalizeStd === false ? 'none' : 'group');
  const members = new Map<number, number[]>();
  groups.forEach((g, i) => (members.get(g) ?? members.set(g, []).get(g)!).push(i));
  const batchStd = scale === 'batch' ? std(scores, scores.reduce((a, b) => a + b, 0) / Math.max(1, scores.length)) : 1;
  const out = new Array<number>(scores.length).fill(0);
  for (const idx of members.values()) {
    const xs = idx.map((i) => scores[i]);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    // A group of one has no spread: its advantage is 0 (as torch.std of one value is nan, replaced by 1 then centred to 0).
    const s = scale === 'group' ? std(xs, mean) : batchStd;
    for (const i of idx) out[i] = scale === 'none' ? scores[i] - mean : (scores[i] - mean) / (s + eps);
  }
  return out;
}

/** GAE for one response: per-token rewards and values (same length). */
export function gaeAdvantages(rewards: number[], values: number[], gamma: number, lam: number): { advantages: number[]; returns: number[] } {
  if (rewards.length !== values.length) throw new Error(`gaeAdvantages: ${rewards.length} rewards but ${values.length} values`);
  const T = rewards.length;
  const advantages = new Array<number>(T).fill(0);
  let next = 0;
  for (let t = T - 1; t >= 0; t--) {
    const nextValue = t + 1 < T ? values[t + 1] : 0;
    const delta = rewards[t] + gamma * nextValue - values[t];
    next = delta + gamma * lam * next;
    advantages[t] = next;
  }
  return { advantages, returns: advantages.map((a, t) => a + values[t]) };
}

/** Shifts and scales all values of all rows together to mean 0, standard deviation 1 (PPO's advantage whitening). */
export function whiten(rows: number[][], eps = 1e-8): number[][] {
  const all = rows.flat();
  if (all.length < 2) return rows.map((r) => r.map(() => 0));
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  const variance = all.reduce((a, x) => a + (x - mean) ** 2, 0) / (all.length - 1);
  const scale = 1 / Math.sqrt(variance + eps);
  return rows.map((r) => r.map((x) => (x - mean) * scale));
}

export const ADVANTAGE_ESTIMATORS = { grpo: grpoAdvantages, gae: gaeAdvantages } as const;
export type AdvantageEstimator = keyof typeof ADVANTAGE_ESTIMATORS;
