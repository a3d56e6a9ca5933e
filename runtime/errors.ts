/**
 * How a supervised job can fail. The activity maps these onto Temporal failures:
 * a JobUserError is non-retryable (bad input or config: retrying cannot help),
 * a JobFailedError is retried like any crash, a JobCancelledError ends the attempt
 * because the caller asked it to.
 */
import { UserError } from '../contract/errors.ts';

/** Bad input or config. Never retried; the message says what is wrong, `where` and `hint` say where and what to do. */
export class JobUserError extends UserError {
  constructor(message: string, opts: { where?: string; hint?: string } = {}) {
    super(message, opts);
    this.name = 'JobUserError';
  }
}

/** The job crashed or exited with a failure code (or a job-reported non-user error). Retried. */
export class JobFailedError extends Error {
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** The last lines of the job's output, for the error message and the UI. */
  readonly logTail: string;
  constructor(message: string, opts: { exitCode?: number | null; signal?: string | null; logTail?: string } = {}) {
    super(message);
    this.name = 'JobFailedError';
    this.exitCode = opts.exitCode ?? null;
    this.signal = opts.signal ?? null;
    this.logTail = opts.logTail ?? '';
  }
}

/** The job was stopped because the caller's AbortSignal fired (SIGTERM, then SIGKILL after the grace period). */
export class JobCancelledError extends Error {
  /** The last checkpoint the job reported or left on disk before it stopped, if any. */
  readonly checkpoint?: { path: string; step?: number };
  constructor(message: string, checkpoint?: { path: string; step?: number }) {
    super(message);
    this.name = 'JobCancelledError';
    this.checkpoint = checkpoint;
  }
}
