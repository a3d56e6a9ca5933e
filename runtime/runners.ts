/**
 * Which program runs a step: the runner its kind declares (dsl/kinds/types.ts Runner) under the
 * name the step chose (`runner:`, recorded in the Plan), else the kind's default. A kind the
 * registry does not know (a job module added through DOCTOR_AGENT_JOBS_DIR, as the tests do)
 * has one runner, `builtin`, its module found by name in those folders (jobs/modules.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getKind } from '../dsl/kinds/index.ts';
import { BUILTIN_RUNNER, defaultRunner } from '../dsl/kinds/types.ts';
import { findJobModule, jobDirs } from '../jobs/modules.ts';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export { BUILTIN_RUNNER };
/** The runner of the command kind. */
export const COMMAND_RUNNER = 'command';

/** A runner ready to start: paths absolute. */
export type ResolvedRunner =
  | { name: string; type: 'builtin'; module: string }
  | { name: string; type: 'program'; argv: string[] }
  | { name: string; type: 'command' };

/** Why a step has no runner to start; the step's fault (never retried). */
export interface RunnerProblem {
  /** `unknown-runner`: the kind declares no runner of that name; `no-module`: an undeclared kind without a job module. */
  code: 'unknown-runner' | 'no-module';
  problem: string;
  hint: string;
}

export interface RunnerOptions {
  /** The project root that declared paths are taken from (default: this project). */
  root?: string;
  /** Folders searched for the job modules of kinds the registry does not know. */
  jobDirs?: () => string[];
}

/** The runner name of a step: the one it names, else its kind's default (`builtin` for a kind the registry does not know). */
export function runnerFor(uses: string, runner?: string): string {
  if (runner) return runner;
  const kind = getKind(uses);
  return kind ? defaultRunner(kind) : BUILTIN_RUNNER;
}

/** A path-looking argv item that exists under the project root, made absolute. */
function fromRoot(root: string, arg: string): string {
  if (isAbsolute(arg) || !arg.includes('/')) return arg;
  const p = resolve(root, arg);
  return existsSync(p) ? p : arg;
}

/** The runner `name` (default: the kind's) of `kind`, or why there is none. */
export function resolveRunner(kind: string, name: string | undefined, opts: RunnerOptions = {}): ResolvedRunner | RunnerProblem {
  const root = opts.root ?? PROJECT_ROOT;
  const chosen = runnerFor(kind, name);
  const declared = getKind(kind);
  if (declared) {
    const r = declared.runners[chosen];
    if (!r) {
      return {
        code: 'unknown-runner',
        problem: `step kind "${kind}" has no runner "${chosen}" (its runners: ${Object.keys(declared.runners).join(', ')})`,
        hint: 'fix the step\'s runner:, or compile the pipeline again with this version',
      };
    }
    if (r.type === 'builtin') return { name: chosen, type: 'builtin', module: resolve(root, r.module) };
    if (r.type === 'program') return { name: chosen, type: 'program', argv: r.argv.map((a) => fromRoot(root, a)) };
    return { name: chosen, type: 'command' };
  }
  if (chosen !== BUILTIN_RUNNER) {
    return { code: 'unknown-runner', problem: `step kind "${kind}" is not declared, so it has no runner "${chosen}"`, hint: 'check the `uses:` and `runner:` of the step' };
  }
  const dirs = (opts.jobDirs ?? (() => jobDirs(join(root, 'jobs'))))();
  const module = findJobModule(kind, dirs);
  if (module) return { name: chosen, type: 'builtin', module };
  return {
    code: 'no-module',
    problem: `step kind "${kind}" has no built-in job (looked for ${kind}.ts in ${dirs.join(', ')})`,
    hint: 'check the `uses:` of the step, or run the program as a `command` step',
  };
}

export function isProblem(r: ResolvedRunner | RunnerProblem): r is RunnerProblem {
  return 'problem' in r;
}
