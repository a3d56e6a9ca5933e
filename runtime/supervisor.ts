/**
 * The job supervisor: runs one heavy step as a child process and follows it over the
 * JSON-lines protocol (runtime/protocol.ts). Implementation in progress; the exported
 * types and signature are the contract.
 */
import { JobFailedError } from './errors.ts';

export interface JobState {
  progress?: { current: number; total?: number; unit?: string; message?: string };
  metrics?: Record<string, number>;
  metricsStep?: number;
  checkpoint?: { path: string; step?: number };
  lastLog?: string;
  pid?: number;
}

export interface SuperviseOptions {
  kind: string;
  runId: string;
  stepId: string;
  attempt: number;
  /** The resolved `with` parameters. */
  params: Record<string, unknown>;
  /** The step folder (exists). */
  outDir: string;
  /** A checkpoint from an earlier attempt (e.g. from Temporal heartbeat details). */
  resumeFrom?: string;
  /** Cancellation: SIGTERM to the job's process group, SIGKILL after graceMs. */
  signal?: AbortSignal;
  /** Default 10000. */
  graceMs?: number;
  /** Every stdout/stderr line is appended here. */
  logFile?: string;
  /** Metric messages are appended here as JSON lines. */
  metricsFile?: string;
  /** Called on every protocol message with the folded state (the caller throttles heartbeats). */
  onState?: (s: JobState) => void;
}

export interface JobOutcome {
  outputs: Record<string, unknown>;
  checkpoint?: { path: string; step?: number };
  metrics?: Record<string, number>;
  durationMs: number;
}

/** Runs the job to completion. Throws JobUserError (never retry), JobFailedError (retry) or JobCancelledError. */
export async function superviseJob(o: SuperviseOptions): Promise<JobOutcome> {
  throw new JobFailedError(`superviseJob(${o.kind}): not implemented yet`);
}
