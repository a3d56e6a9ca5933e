/**
 * The artifact store: a plain folder (local by default, a shared mount when workers
 * span machines). Layout:
 *
 *   <root>/runs/<runId>/plan.json                       the Plan the run executes
 *   <root>/runs/<runId>/report.html                     the run's report, refreshed whenever a step finishes (runtime/run-report.ts)
 *   <root>/runs/<runId>/outcomes/<stepId>.json          how each step ended, as the step activity recorded it
 *   <root>/runs/<runId>/steps/<stepId>/                 the step folder: the job's outputs
 *   <root>/runs/<runId>/steps/<stepId>/step.log         every stdout/stderr line, all attempts
 *   <root>/runs/<runId>/steps/<stepId>/metrics.jsonl    one {time, step, values} object a line
 *   <root>/runs/<runId>/steps/<stepId>/checkpoints/     checkpoints of built-in jobs
 *   <root>/cache/<key>.json                             step cache entries (runtime/cache.ts)
 *   <root>/temporal/temporal.db                         the embedded dev server's SQLite database
 *   <root>/server/                                      the embedded dev server's pid file and log
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../common/fs.ts';
import { UserError } from '../contract/errors.ts';

/** DOCTOR_AGENT_HOME if set, else `.doctor-agent` in the current folder. */
export function defaultStoreRoot(): string {
  const env = process.env.DOCTOR_AGENT_HOME;
  return env && env.trim() ? resolve(env) : resolve(process.cwd(), '.doctor-agent');
}

/**
 * Run and step ids become folder names: refuse anything that could escape the store (a
 * UserError: the id came from the command line or a pipeline).
 */
export function safeName(what: string, name: string): string {
  if (!name || name === '.' || name === '..' || /[/\\\0]/.test(name) || name.length > 200) {
    throw new UserError(`invalid ${what} ${JSON.stringify(name)}: use letters, digits, '.', '_', '-' (no '/' or '\\', not '.' or '..', at most 200 characters)`);
  }
  return name;
}

export class ArtifactStore {
  readonly root: string;

  constructor(root: string = defaultStoreRoot()) {
    this.root = resolve(root);
  }

  runDir(runId: string): string {
    return join(this.root, 'runs', safeName('run id', runId));
  }

  /** The step's folder, as a path only (readers use it: nothing is created). */
  stepPath(runId: string, stepId: string): string {
    return join(this.runDir(runId), 'steps', safeName('step id', stepId));
  }

  /** The step's folder, created if missing. */
  stepDir(runId: string, stepId: string): string {
    const dir = this.stepPath(runId, stepId);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  stepLog(runId: string, stepId: string): string {
    return join(this.stepDir(runId, stepId), 'step.log');
  }

  metricsFile(runId: string, stepId: string): string {
    return join(this.stepDir(runId, stepId), 'metrics.jsonl');
  }

  /** How the step ended (succeeded, cached, failed), written by the step activity; a path only. */
  outcomeFile(runId: string, stepId: string): string {
    return join(this.runDir(runId), 'outcomes', `${safeName('step id', stepId)}.json`);
  }

  /** The run's report page; a path only. */
  reportFile(runId: string): string {
    return join(this.runDir(runId), 'report.html');
  }

  /** Where built-in jobs write their checkpoints, created if missing. */
  checkpointsDir(runId: string, stepId: string): string {
    const dir = join(this.stepDir(runId, stepId), 'checkpoints');
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  cacheDir(): string {
    return join(this.root, 'cache');
  }

  temporalDbPath(): string {
    return join(this.root, 'temporal', 'temporal.db');
  }

  serverDir(): string {
    return join(this.root, 'server');
  }

  /** Records the Plan a run executes (atomically), so `resume` and `logs` can find it later. */
  writeRunManifest(runId: string, plan: unknown): void {
    writeJsonAtomic(join(this.runDir(runId), 'plan.json'), plan);
  }

  readRunManifest<T = unknown>(runId: string): T {
    return readJsonFile<T>(join(this.runDir(runId), 'plan.json'));
  }
}
