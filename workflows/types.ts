/**
 * What the pipeline workflow takes, carries over continue-as-new, answers to the
 * `progress` query and hands the step activity. Pure types and constants: the
 * workflow bundle, the worker and the client all import this file.
 */
import type { Plan, PlanStep } from '../dsl/plan.ts';

/** The task queue of the workflow itself (step activities run on each step's `queue`). */
export const WORKFLOW_QUEUE = 'doctor-agent';
export const WORKFLOW_TYPE = 'pipeline';

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached' | 'cancelled';
export type RunStatus = 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled';

export interface RunOptions {
  /** Ignore the step cache (results are still recorded). */
  noCache?: boolean;
  /** Continue-as-new after this many finished steps in one workflow run (default 500). */
  continueAsNewAfter?: number;
  /** The failed run this one resumes: its unfinished steps continue from that run's checkpoints. */
  resumeOf?: string;
}

export interface JobProgress {
  current: number;
  total?: number;
  unit?: string;
  message?: string;
}

/** What the step activity heartbeats (and returns when done): the job's latest state. */
export interface StepHeartbeat {
  progress?: JobProgress;
  metrics?: Record<string, number>;
  checkpoint?: string;
  /** The checkpoint of an earlier run this step continued from (in a resumed run). */
  resumedFrom?: string;
  /** Why the step cache had no result for the step, when an entry of the same parameters exists (e.g. its code changed). */
  cacheMiss?: string;
  /** Milliseconds since the epoch when this was sent. */
  at?: number;
}

export interface StepRecord {
  id: string;
  uses: string;
  needs: string[];
  queue: string;
  state: StepState;
  attempt?: number;
  startedAt?: string;
  finishedAt?: string;
  outputs?: Record<string, unknown>;
  error?: string;
  /** Why the step was skipped. */
  reason?: string;
  progress?: JobProgress;
  metrics?: Record<string, number>;
  checkpoint?: string;
  /** The checkpoint of an earlier run the step continued from (in a resumed run). */
  resumedFrom?: string;
  /** Why the step cache had no result for it (see StepHeartbeat.cacheMiss). */
  cacheMiss?: string;
  /** Last heartbeat of a running step (filled in by the client from the server's view). */
  heartbeat?: StepHeartbeat;
}

/** State that survives continue-as-new. */
export interface CarriedState {
  runDir: string;
  startedAt: string;
  paused: boolean;
  steps: Record<string, StepRecord>;
  /** How many times this run continued as new. */
  generation: number;
}

export interface PipelineInput {
  plan: Plan;
  options?: RunOptions;
  /** Whether the server knows DoctorAgentPipeline / DoctorAgentStatus (set by the client). */
  searchAttributes?: boolean;
  /** Present only after continue-as-new. */
  carry?: CarriedState;
}

export interface PipelineProgress {
  runId: string;
  pipeline: string;
  planHash: string;
  status: RunStatus;
  paused: boolean;
  runDir: string;
  startedAt: string;
  generation: number;
  steps: StepRecord[];
}

export interface PipelineResult {
  runId: string;
  pipeline: string;
  status: 'succeeded';
  runDir: string;
  steps: Record<string, { state: StepState; outputs: Record<string, unknown> | null }>;
}

/** Input of the step activity. */
export interface RunStepInput {
  runId: string;
  runDir: string;
  pipeline: string;
  step: PlanStep;
  /** The step's `with`, all expressions resolved. */
  params: Record<string, unknown>;
  noCache: boolean;
  /** The failed run this one resumes (see RunOptions.resumeOf). */
  resumeOf?: string;
}

export interface RunStepResult extends StepHeartbeat {
  outputs: Record<string, unknown>;
  cached: boolean;
  attempt: number;
}

export interface PrepareRunInput {
  runId: string;
  plan: Plan;
  startedAt: string;
}

/** The activities the workflow calls; activities/ implements them (createActivities). */
export interface PipelineActivities {
  /** Creates the run's folder in the artifact store and records the Plan there. */
  prepareRun(input: PrepareRunInput): Promise<{ dir: string }>;
  /** Runs one step as a job under the supervisor (or takes its result from the step cache). */
  runStep(input: RunStepInput): Promise<RunStepResult>;
}
