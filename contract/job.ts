/**
 * What a built-in job sees: its spec and a way to talk to the supervisor over the
 * JSON-lines protocol (contract/protocol.ts). A job module (e.g. jobs/train.sft.ts) exports
 * `run(ctx)` returning its outputs; jobs/main.ts loads it and reports the result.
 */
import type { JobMessage, JobSpec } from './protocol.ts';

export interface JobContext<P = Record<string, unknown>> {
  spec: JobSpec;
  params: P;
  outDir: string;
  resumeFrom?: string;
  /** Aborted when the supervisor asks the job to stop (SIGTERM): checkpoint and exit. */
  signal: AbortSignal;
  progress(current: number, total?: number, message?: string, unit?: string): void;
  metric(values: Record<string, number>, step?: number): void;
  /** Call only after the checkpoint is completely written (atomically). */
  checkpoint(path: string, step?: number): void;
  artifact(name: string, path: string): void;
  log(message: string, level?: 'info' | 'warn' | 'error'): void;
}

export type JobModule<P = Record<string, unknown>> = {
  run(ctx: JobContext<P>): Promise<Record<string, unknown>>;
};

export function send(msg: JobMessage): void {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

export function makeContext<P>(spec: JobSpec, signal: AbortSignal): JobContext<P> {
  return {
    spec,
    params: spec.params as P,
    outDir: spec.outDir,
    resumeFrom: spec.resumeFrom,
    signal,
    progress: (current, total, message, unit) => send({ type: 'progress', current, total, message, unit }),
    metric: (values, step) => send({ type: 'metric', values, step }),
    checkpoint: (path, step) => send({ type: 'checkpoint', path, step }),
    artifact: (name, path) => send({ type: 'artifact', name, path }),
    log: (message, level = 'info') => send({ type: 'log', level, message }),
  };
}
