/**
 * The JSON-lines job protocol. Every heavy step runs as a child process (a "job"): the
 * runner its step kind declares (dsl/kinds/types.ts), a built-in job or an external program. A job writes one JSON
 * object per line on stdout; lines that are not protocol messages are kept as log.
 * The supervisor (runtime/supervisor.ts) reads them, heartbeats to Temporal, and
 * on a retry hands the job the newest valid checkpoint.
 *
 * Pure types and a parser: no Node imports, so the workflow may import the types.
 */

export type JobMessage =
  /** Work done so far, e.g. training steps or items processed. */
  | { type: 'progress'; current: number; total?: number; unit?: string; message?: string }
  /** Scalar metrics at a step (loss, reward, accuracy...). */
  | { type: 'metric'; step?: number; values: Record<string, number> }
  /** A checkpoint is complete on disk (written atomically) and can be resumed from. */
  | { type: 'checkpoint'; path: string; step?: number }
  /** A named output file or folder. */
  | { type: 'artifact'; name: string; path: string }
  /** The job's outputs; the last one before a clean exit wins. */
  | { type: 'result'; outputs: Record<string, unknown> }
  /**
   * A failure the job understood. `user: true` means bad input or config: the step
   * fails at once and is never retried. Otherwise it is retried like a crash.
   */
  | { type: 'error'; message: string; user?: boolean; where?: string; hint?: string }
  | { type: 'log'; level?: 'info' | 'warn' | 'error'; message: string };

const TYPES = new Set(['progress', 'metric', 'checkpoint', 'artifact', 'result', 'error', 'log']);

/** Parses one stdout line; returns undefined when it is not a protocol message (plain log). */
export function parseJobLine(line: string): JobMessage | undefined {
  const t = line.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) return undefined;
  try {
    const v = JSON.parse(t) as { type?: unknown };
    if (v && typeof v === 'object' && typeof v.type === 'string' && TYPES.has(v.type)) return v as JobMessage;
  } catch {
    /* not JSON: plain log */
  }
  return undefined;
}

/**
 * What the supervisor hands a job (a built-in one, or a program runner), as JSON in a file
 * named on its command line.
 */
export interface JobSpec {
  /** Step kind, e.g. "train.sft". */
  kind: string;
  /** The job module of a built-in job (absolute path): what jobs/main.ts loads. */
  module?: string;
  runId: string;
  stepId: string;
  /** Resolved `with` parameters (no expressions left). */
  params: Record<string, unknown>;
  /** The step's artifact folder (exists; the job writes its outputs here). */
  outDir: string;
  /** Newest valid checkpoint from an earlier attempt, if any. */
  resumeFrom?: string;
  /** Attempt number, from 1. */
  attempt: number;
}
