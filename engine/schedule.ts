/**
 * Linear warmup then cosine decay (the usual "cosine with warmup"): for step s,
 *   s < warmup:  peak * s / warmup
 *   otherwise:   min + (peak - min) * 0.5 * (1 + cos(pi * progress)),  progress = (s - warmup) / (total - warmup)
 * so step 0 has lr 0, step `warmup` the peak, step `total` the minimum.
 */
export interface CosineSchedule {
  peakLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor of the decay (default 0). */
  minLr?: number;
}

/** The linear warmup from 0 that every schedule with warmup starts with (for step < warmupSteps). */
function warmupLr(step: number, s: Pick<CosineSchedule, 'peakLr' | 'warmupSteps'>): number {
  return (s.peakLr * step) / Math.max(1, s.warmupSteps);
}

export function warmupCosineLr(step: number, s: CosineSchedule): number {
  const min = s.minLr ?? 0;
  if (step < s.warmupSteps) return warmupLr(step, s);
  const progress = Math.min(1, (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps));
  return min + (s.peakLr - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

/** Warmup steps as a fraction of the total (e.g. 0.05 for 5%), rounded up. */
export function warmupFromRatio(totalSteps: number, ratio: number): number {
  return Math.ceil(totalSteps * ratio);
}

/**
 * Linear warmup then linear decay to 0 at `totalSteps` (transformers' "linear" schedule,
 * get_linear_schedule_with_warmup): peak * s / warmup during warmup, then
 * peak * max(0, (total - s) / (total - warmup)).
 */
export function warmupLinearLr(step: number, s: Omit<CosineSchedule, 'minLr'>): number {
  if (step < s.warmupSteps) return warmupLr(step, s);
  return s.peakLr * Math.max(0, (s.totalSteps - step) / Math.max(1, s.totalSteps - s.warmupSteps));
}

/** The schedules of transformers' lr_scheduler_type that the trainers offer. */
export const LR_SCHEDULERS = ['linear', 'cosine', 'constant_with_warmup', 'constant'] as const;
export type LrSchedulerType = (typeof LR_SCHEDULERS)[number];

/** The learning rate at `step` (0-based) under a transformers-style schedule; `constant` has no warmup. */
export function scheduledLr(type: LrSchedulerType, step: number, s: Omit<CosineSchedule, 'minLr'>): number {
  switch (type) {
    case 'linear': return warmupLinearLr(step, s);
    case 'cosine': return warmupCosineLr(step, s);
    case 'constant_with_warmup': return step < s.warmupSteps ? warmupLr(step, s) : s.peakLr;
    case 'constant': return s.peakLr;
  }
}
