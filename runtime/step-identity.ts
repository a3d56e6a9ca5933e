/**
 * What a step folder was made by, and where a resumed run's step continues from.
 *
 * The step activity writes <step folder>/.step.json at the start of every attempt: the step's
 * id, kind, runner, hash in the Plan, a hash of its resolved parameters (and, when the step
 * computed its step-cache key: the key, a hash of its input files' contents, the version of the
 * code that ran it, and why the cache missed), the checkpoint it resumed from, and, as the job
 * runs, its newest checkpoint; `done` once it succeeded.
 *
 * `resume RUN` of a failed run starts a new run with `resumeOf: RUN`. There, a step not taken
 * from the cache continues from the newest valid checkpoint its namesake left in the old run's
 * folder, provided the old step was the same (same id, kind, Plan hash and resolved
 * parameters, same inputs) and did not finish. Otherwise it starts from zero, and says why.
 * Code that changed in between (a fix of the trainer) does not stop it continuing; the log
 * says so.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../common/fs.ts';
import { hashJson } from '../common/hash.ts';
import type { PlanStep } from '../dsl/plan.ts';
import type { CodeVersion } from './code-version.ts';
import { newestCheckpoint } from './checkpoints.ts';
import { parseCommandParams } from './command.ts';
import { isProblem, resolveRunner } from './runners.ts';

export const IDENTITY_FILE = '.step.json';
const IDENTITY_FORMAT = 1;

export interface StepIdentity {
  format: typeof IDENTITY_FORMAT;
  runId: string;
  stepId: string;
  uses: string;
  /** The step's hash in the Plan (its definition). */
  planHash: string;
  /** Hash of the resolved `with`. */
  paramsHash: string;
  /** The runner that ran it (`builtin`, `command`, …). */
  runner?: string;
  /** The step-cache key (runner, code, params and input contents), when the step computed one. */
  cacheKey?: string;
  /** Hash of the content of its input files, with the cache key. */
  inputsHash?: string;
  /** The version of the code that ran it (package, sources hash, git commit), with the cache key. */
  code?: Omit<CodeVersion, 'files'>;
  /** Why the step cache had no result for it (e.g. `code of rl.grpo changed since run R`). */
  cacheMiss?: string;
  /** The checkpoint the latest attempt started from. */
  resumedFrom?: string;
  /** The newest checkpoint the job reported. */
  checkpoint?: string;
  /** The step succeeded: nothing to continue. */
  done?: boolean;
}

/** What else the step activity knows of the step: its runner and, with a cache key, what went into it. */
export interface IdentityDetails {
  runner?: string;
  inputHashes?: Record<string, string>;
  code?: CodeVersion;
  cacheMiss?: string;
}

export function stepIdentity(runId: string, step: PlanStep, params: Record<string, unknown>, cacheKey?: string, more: IdentityDetails = {}): StepIdentity {
  const code = more.code ? { package: more.code.package, sources: more.code.sources, ...(more.code.commit ? { commit: more.code.commit } : {}) } : undefined;
  return {
    format: IDENTITY_FORMAT, runId, stepId: step.id, uses: step.uses, planHash: step.hash,
    paramsHash: hashJson({ uses: step.uses, params }),
    ...(more.runner ? { runner: more.runner } : {}),
    ...(cacheKey ? { cacheKey } : {}),
    ...(more.inputHashes ? { inputsHash: hashJson(more.inputHashes) } : {}),
    ...(code ? { code } : {}),
    ...(more.cacheMiss ? { cacheMiss: more.cacheMiss } : {}),
  };
}

export function writeIdentity(stepDir: string, id: StepIdentity): void {
  writeJsonAtomic(join(stepDir, IDENTITY_FILE), id);
}

export function readIdentity(stepDir: string): StepIdentity | undefined {
  const file = join(stepDir, IDENTITY_FILE);
  if (!existsSync(file)) return undefined;
  try {
    const id = readJsonFile<StepIdentity>(file);
    return id?.format === IDENTITY_FORMAT ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Glob (relative to the step folder) of the checkpoints a step writes: `checkpoints/*`, except for a command runner (its `checkpoints`). */
export function checkpointPattern(uses: string, params: Record<string, unknown>, stepId: string, runner?: string): string | undefined {
  const r = resolveRunner(uses, runner);
  if (isProblem(r) || r.type !== 'command') return 'checkpoints/*';
  try {
    return parseCommandParams(params, stepId).checkpoints;
  } catch {
    return undefined; // bad params: the job itself reports them
  }
}

/** Why the old step is not the same as this one, or undefined when it is. */
export function definitionChange(old: StepIdentity, now: StepIdentity): string | undefined {
  if (old.stepId !== now.stepId || old.uses !== now.uses) return `it was ${old.uses} step "${old.stepId}"`;
  if (old.planHash !== now.planHash) return 'its definition in the pipeline changed';
  if (old.paramsHash !== now.paramsHash) return 'its resolved parameters changed';
  if (old.runner && now.runner && old.runner !== now.runner) return `its runner changed from ${old.runner} to ${now.runner}`;
  if (old.inputsHash && now.inputsHash) {
    if (old.inputsHash !== now.inputsHash) return 'its input files changed';
  } else if (old.cacheKey && now.cacheKey && old.cacheKey !== now.cacheKey) return 'its input files changed';
  return undefined;
}

/** ", its code changed since" when the versions recorded differ (a fix need not discard the checkpoints). */
function codeChange(old: StepIdentity, now: StepIdentity): string {
  if (!old.code || !now.code) return '';
  if (old.code.sources !== now.code.sources || old.code.package !== now.code.package) return ` (the code of ${now.uses} changed since)`;
  return '';
}

export interface ResumePoint {
  /** The checkpoint to continue from; absent: start from zero. */
  checkpoint?: string;
  /** One line for the step's log: where it continues from, or why it starts from zero. */
  note: string;
}

/** Where step `now` continues from, given the folder its namesake used in run `oldRunId`. */
export function resumePointFrom(oldRunId: string, oldStepDir: string, now: StepIdentity, params: Record<string, unknown>): ResumePoint {
  const what = `step "${now.stepId}" of run ${oldRunId}`;
  const old = readIdentity(oldStepDir);
  if (!old) {
    return { note: existsSync(oldStepDir) ? `${what} left no record of what it ran: starting from zero` : `${what} never started: starting from zero` };
  }
  const change = definitionChange(old, now);
  if (change) return { note: `${what} is not the same step (${change}): starting from zero` };
  if (old.done) return { note: `${what} had finished (its result is not cached): starting from zero` };
  const found = newestCheckpoint(oldStepDir, checkpointPattern(now.uses, params, now.stepId, now.runner), old.checkpoint ?? old.resumedFrom);
  if (!found) return { note: `${what} left no valid checkpoint: starting from zero` };
  return { checkpoint: found.path, note: `continuing ${what} from its newest valid checkpoint ${found.path}${codeChange(old, now)}` };
}
