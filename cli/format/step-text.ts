/** How a step's state and progress read in the terminal, for the live bars and `status`. */
import type { JobProgress, StepRecord } from '../../workflows/types.ts';

/** The state, with the attempt once it is a retry: `running (attempt 2)`. */
export function stateText(r: Pick<StepRecord, 'state' | 'attempt'>): string {
  return `${r.state}${r.attempt && r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`;
}

/** Items done, out of the total when known, with the unit: `120/400 items`. */
export function progressText(p: JobProgress): string {
  return `${p.current}${p.total ? `/${p.total}` : ''}${p.unit ? ` ${p.unit}` : ''}`;
}
