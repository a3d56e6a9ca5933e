/**
 * What a built-in job sees: its spec and a way to talk to the supervisor over the
 * JSON-lines protocol (runtime/protocol.ts). A job module (jobs/<kind>.ts) exports
 * `run(ctx)` returning its outputs; jobs/main.ts loads it and reports the result.
 */
import type { z } from 'zod';
import type { JobMessage, JobSpec } from '../runtime/protocol.ts';

/** A failure caused by the user's input or config: never retried, shown as is. */
export class UserError extends Error {
  readonly where?: string;
  readonly hint?: string;
  constructor(message: string, opts: { where?: string; hint?: string } = {}) {
    super(message);
    this.name = 'UserError';
    this.where = opts.where;
    this.hint = opts.hint;
  }
}

/** The step's `with:` parameters checked by its kind's schema; the first problem is a user error naming the field. */
export function parseParams<T>(schema: z.ZodType<T>, params: unknown, kind: string): T {
  const parsed = schema.safeParse(params);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new UserError(`with.${i.path.join('.') || '(params)'}: ${i.message}`, { hint: `see docs/pipeline-language.md, ${kind}` });
  }
  return parsed.data;
}

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
