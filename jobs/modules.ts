/**
 * The job module of a step kind the registry does not declare (dsl/kinds/ declares each of its
 * kinds' runners, the job module included): <kind>.ts in jobs/, then in the folders listed in
 * DOCTOR_AGENT_JOBS_DIR (separated by ':'), as the tests add small job modules of their own.
 * Used by runtime/runners.ts, which the supervisor and the step cache resolve runners with.
 * No side effects on import.
 */
import { existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JOBS_DIR = dirname(fileURLToPath(import.meta.url));

/** A kind names a module: letters, digits, '.', '_' and '-', not starting with a dot. */
export function validKindName(kind: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(kind);
}

/** The folders searched for job modules, in order. */
export function jobDirs(jobsDir: string = JOBS_DIR, extra: string | undefined = process.env.DOCTOR_AGENT_JOBS_DIR): string[] {
  const dirs = [jobsDir];
  for (const d of (extra ?? '').split(delimiter)) if (d.trim()) dirs.push(resolve(d));
  return dirs;
}

/** The module file of a kind's job, or undefined when no folder has one (or the name is invalid). */
export function findJobModule(kind: string, dirs: string[] = jobDirs()): string | undefined {
  if (!validKindName(kind)) return undefined;
  for (const d of dirs) {
    const p = join(d, `${kind}.ts`);
    if (existsSync(p)) return p;
  }
  return undefined;
}
