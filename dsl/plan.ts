/**
 * The compiled Plan: the contract between the compiler (dsl/), the workflow that
 * interprets it (workflows/) and the activities that execute its steps (activities/).
 *
 * A Plan is plain JSON, recorded in workflow history, so it must stay self-contained:
 * params are already substituted; only `${{ steps.<id>.outputs.<name> }}` and
 * `${{ run.* }}` expressions remain inside `with` and `if`, resolved at run time by
 * dsl/expr.ts (pure code, safe inside the workflow sandbox).
 *
 * This file must stay free of Node imports: the workflow bundle imports it.
 */

export const PLAN_FORMAT = 1 as const;

/** Temporal-style retry policy, durations in milliseconds. */
export interface PlanRetry {
  maximumAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
}

export interface PlanTimeouts {
  /** Whole step, all attempts included (Temporal scheduleToClose). */
  stepMs: number;
  /** One attempt (Temporal startToClose). */
  attemptMs: number;
  /** Heartbeat timeout: a worker silent this long is considered lost and the step is retried on any worker of the queue. */
  heartbeatMs: number;
  /** SIGTERM → SIGKILL when the step is cancelled (absent in Plans compiled before it existed: 10 s). */
  graceMs?: number;
}

export interface PlanStep {
  id: string;
  /** Step kind name from the registry, e.g. "train.sft". */
  uses: string;
  /** Which of the kind's runners runs the step (absent in Plans compiled before it existed: the kind's default). */
  runner?: string;
  /** Direct dependencies (ids), sorted. */
  needs: string[];
  /** The kind's parameters after param substitution and schema defaults. May hold run-time expressions as strings. */
  with: Record<string, unknown>;
  /** A run-time condition expression (without the `${{ }}`), or absent when always true. */
  if?: string;
  retry: PlanRetry;
  timeouts: PlanTimeouts;
  /** Temporal task queue the step's activities run on. */
  queue: string;
  /** Whether a successful result may be reused from the step cache. */
  cache: boolean;
  /** Output names the kind declares (the only ones `steps.<id>.outputs.*` may reference). */
  outputs: string[];
  /** sha256 (hex) of the canonical JSON of this step, without `hash` and `source` (moving a step in its file keeps its hash). */
  hash: string;
  /** Where the step was declared, for error messages at run time. */
  source: { file: string; line: number; col: number };
}

export interface Plan {
  format: typeof PLAN_FORMAT;
  name: string;
  description: string;
  /** The YAML file the plan was compiled from (as given), and any files it extends. */
  sources: string[];
  /** Final param values (defaults, then --params file, then --set). */
  params: Record<string, unknown>;
  /** Steps in a deterministic topological order (ties broken by declaration order). */
  steps: PlanStep[];
  /** sha256 (hex) of the canonical JSON of the plan, without `hash`. */
  hash: string;
}

/** Run-time context available to expressions as `run.*`. */
export interface RunContext {
  id: string;
  /** Artifact folder of the run. */
  dir: string;
  /** ISO time the run started. */
  startedAt: string;
  pipeline: string;
}
