/**
 * The job supervisor: every heavy step runs as a child process, followed here.
 *
 * What runs is the step's runner, as its kind declares it (runtime/runners.ts):
 * - `builtin`: the JobSpec goes to <outDir>/.job-spec.json and the kind's job module runs as
 *   `node --import tsx jobs/main.ts SPEC` (tsx and jobs/main.ts found from this project's
 *   root, whatever the current folder); the spec names the module.
 * - a `program`: the declared argv with the spec file's path appended (and in
 *   DOCTOR_AGENT_JOB_SPEC), in the worker's working folder.
 * - `command` (the command kind): the user's program (runtime/command.ts), argv run
 *   directly unless `shell: true`.
 *
 * All speak the JSON-lines protocol (contract/protocol.ts) on stdout; other lines, and
 * all of stderr, are log. Each protocol message folds into a JobState handed to
 * onState (the activity turns it into heartbeats).
 *
 * Process hygiene: the job leads its own process group. When it exits, whatever it
 * left running in that group is killed. Cancellation sends SIGTERM to the group and
 * SIGKILL after the grace period. The process's one watchdog (runtime/watchdog.ts) kills
 * the group if this process dies first.
 *
 * Checkpoints reach onState from `checkpoint` messages and, for a command step with a
 * `checkpoints` glob, from a scan of the step folder every 2 s.
 *
 * Resume: the newest valid checkpoint (runtime/checkpoints.ts) among `resumeFrom` and
 * those found in the step folder (the `checkpoints` glob of a command step;
 * `checkpoints/*` for built-in jobs) is handed to the job: JobSpec.resumeFrom, or the
 * command's resume_args.
 *
 * Outcome: exit 0 (or a command's success_codes) → outputs = artifacts reported, then
 * the last `result` message, then a command's declared outputs. A non-zero exit after
 * an `error` message with user: true → JobUserError (never retried). Any other failure
 * → JobFailedError with the log tail. Stopped through the signal → JobCancelledError.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { engineProcessEnv } from '../common/engine-env.ts';
import { writeJsonAtomic } from '../common/fs.ts';
import { parseJobLine, type JobMessage, type JobSpec } from '../contract/protocol.ts';
import { JobCancelledError, JobFailedError, JobUserError } from './errors.ts';
import { newestCheckpoint } from './checkpoints.ts';
import { commandLaunch, declaredOutputs, matchProgress, parseCommandParams, progressRegex, type Launch } from './command.ts';
import { processWatchdog } from './watchdog.ts';
import { isProblem, resolveRunner } from './runners.ts';

export interface JobState {
  progress?: { current: number; total?: number; unit?: string; message?: string };
  /** Latest value of every metric reported so far. */
  metrics?: Record<string, number>;
  metricsStep?: number;
  checkpoint?: { path: string; step?: number };
  lastLog?: string;
  pid?: number;
}

export interface SuperviseOptions {
  kind: string;
  /** The step's runner among those its kind declares (default: the kind's default). */
  runner?: string;
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
  /** Metric messages are appended here, one {time, step, values} object a line. */
  metricsFile?: string;
  /** Called on every protocol message (and progress_regex match) with the folded state; the caller throttles. */
  onState?: (s: JobState) => void;
}

export interface JobOutcome {
  outputs: Record<string, unknown>;
  checkpoint?: { path: string; step?: number };
  metrics?: Record<string, number>;
  durationMs: number;
}

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const JOBS_MAIN = join(PROJECT_ROOT, 'jobs', 'main.ts');
const TSX_LOADER = import.meta.resolve('tsx');
const BUILTIN_CHECKPOINTS = 'checkpoints/*';
const TAIL_LINES = 40;
/** How often a command step's checkpoint glob is re-scanned while it runs. */
const CHECKPOINT_SCAN_MS = 2000;

/** The last lines of output, kept for error messages. */
class Tail {
  private lines: string[] = [];
  push(line: string): void {
    this.lines.push(line.length > 500 ? line.slice(0, 500) + '…' : line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
  }
  text(): string {
    return this.lines.join('\n');
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* ESRCH: the group is already gone */
  }
}

function describeExit(code: number | null, signal: string | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** Runs the job to completion. Throws JobUserError (never retry), JobFailedError (retry) or JobCancelledError. */
export async function superviseJob(o: SuperviseOptions): Promise<JobOutcome> {
  const started = Date.now();
  const label = `step "${o.stepId}" (${o.kind})`;
  if (o.signal?.aborted) throw new JobCancelledError(`${label} cancelled before it started`);
  mkdirSync(o.outDir, { recursive: true });

  // What to start, and what to resume from.
  const runner = resolveRunner(o.kind, o.runner);
  if (isProblem(runner)) throw new JobUserError(`${label}: ${runner.problem}`, { where: `steps.${o.stepId}.runner`, hint: runner.hint });
  const isCommand = runner.type === 'command';
  const cmd = isCommand ? parseCommandParams(o.params, o.stepId) : undefined;
  const regex = cmd ? progressRegex(cmd) : undefined;
  const resume = newestCheckpoint(o.outDir, cmd ? cmd.checkpoints : BUILTIN_CHECKPOINTS, o.resumeFrom);
  const ctx = { outDir: o.outDir, runId: o.runId, stepId: o.stepId, attempt: o.attempt, checkpoint: resume?.path };
  let launch: Launch;
  if (runner.type === 'command') {
    launch = commandLaunch(cmd!, ctx);
  } else {
    const spec: JobSpec = {
      kind: o.kind, runId: o.runId, stepId: o.stepId, params: o.params, outDir: o.outDir, resumeFrom: resume?.path, attempt: o.attempt,
      ...(runner.type === 'builtin' ? { module: runner.module } : {}),
    };
    const specPath = join(o.outDir, '.job-spec.json');
    writeJsonAtomic(specPath, spec);
    launch = runner.type === 'builtin'
      ? { file: process.execPath, args: ['--import', TSX_LOADER, JOBS_MAIN, specPath], shell: false, env: engineProcessEnv(), cwd: process.cwd() }
      : { file: runner.argv[0], args: [...runner.argv.slice(1), specPath], shell: false, env: { DOCTOR_AGENT_JOB_SPEC: specPath }, cwd: process.cwd() };
  }
  const successCodes = cmd ? cmd.success_codes : [0];
  if (!existsSync(launch.cwd)) {
    throw new JobUserError(`${label}: working folder ${launch.cwd} does not exist`, {
      where: `steps.${o.stepId}.with.cwd`,
      hint: 'create it in an earlier step, or fix the path (relative paths are taken from the step folder)',
    });
  }

  // Logs.
  let log: WriteStream | undefined;
  if (o.logFile) {
    if (dirname(o.logFile) !== o.outDir) mkdirSync(dirname(o.logFile), { recursive: true });
    log = createWriteStream(o.logFile, { flags: 'a' });
    log.on('error', () => {}); // a full disk must not take the job down with it
    const what = launch.shell ? launch.file : [launch.file, ...launch.args].join(' ');
    log.write(`=== ${new Date().toISOString()} attempt ${o.attempt}${resume ? ` resuming from ${resume.path}` : ''}: ${what}\n`);
  }
  if (o.metricsFile && dirname(o.metricsFile) !== o.outDir) mkdirSync(dirname(o.metricsFile), { recursive: true });

  // Start, and arm the watchdog at once (it is started with the first job of this process).
  const watchdog = processWatchdog();
  // Plain child_process.spawn: the job needs nothing more, and every step pays for the
  // option handling of a richer wrapper on the worker's main thread.
  const cannotStart = (err: Error): Error => {
    const reason = (err.message || 'unknown error').split('\n')[0];
    if (runner.type === 'builtin') return new JobFailedError(`${label}: cannot start the job process: ${reason}`);
    if (runner.type === 'program') {
      return new JobUserError(`${label}: cannot start ${JSON.stringify(launch.file)}, the program of runner "${runner.name}": ${reason}`, {
        where: `steps.${o.stepId}.runner`,
        hint: 'install the program on the worker (on PATH), or choose another runner',
      });
    }
    return new JobUserError(`${label}: cannot start ${JSON.stringify(launch.file)}: ${reason}`, {
      where: `steps.${o.stepId}.with.run`,
      hint: 'check that the program is installed and on PATH, or give its full path',
    });
  };
  let child: ChildProcess;
  try {
    child = spawn(launch.file, launch.args, {
      shell: launch.shell,
      cwd: launch.cwd,
      env: { ...process.env, ...launch.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    // Arguments spawn refuses outright (e.g. a NUL byte in an argument).
    if (log) await new Promise((r) => log!.end(r));
    throw cannotStart(err as Error);
  }
  if (child.pid) watchdog.arm(child.pid);

  // Follow its output.
  const state: JobState = { pid: child.pid };
  const tail = new Tail();
  const artifacts: Record<string, unknown> = {};
  let result: Record<string, unknown> | undefined;
  let lastError: Extract<JobMessage, { type: 'error' }> | undefined;
  const emit = () => {
    try {
      o.onState?.({ ...state, metrics: state.metrics && { ...state.metrics } });
    } catch (err) {
      log?.write(`[supervisor] onState failed: ${(err as Error).message}\n`); // the caller's bug must not kill the job
    }
  };

  const onMessage = (m: JobMessage): void => {
    switch (m.type) {
      case 'progress':
        state.progress = { current: m.current, total: m.total, unit: m.unit, message: m.message };
        break;
      case 'metric':
        state.metrics = { ...state.metrics, ...m.values };
        if (m.step !== undefined) state.metricsStep = m.step;
        if (o.metricsFile) {
          try {
            appendFileSync(o.metricsFile, JSON.stringify({ time: new Date().toISOString(), step: m.step, values: m.values }) + '\n');
          } catch {
            /* metrics are a record, not the work: never fail the job over them */
          }
        }
        break;
      case 'checkpoint':
        state.checkpoint = { path: resolve(launch.cwd, m.path), step: m.step };
        break;
      case 'artifact':
        artifacts[m.name] = resolve(launch.cwd, m.path);
        break;
      case 'result':
        result = m.outputs;
        break;
      case 'error':
        lastError = m;
        state.lastLog = m.message;
        for (const l of m.message.split('\n').slice(0, 10)) tail.push(l);
        break;
      case 'log':
        state.lastLog = m.message;
        tail.push(m.message);
        break;
    }
    emit();
  };

  const follow = (stream: Readable | null, parse: boolean): Promise<void> => {
    if (!stream) return Promise.resolve();
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => {
      log?.write(line + '\n');
      const m = parse ? parseJobLine(line) : undefined;
      if (m) return onMessage(m);
      if (line.trim()) tail.push(line);
      const p = regex && matchProgress(regex, line);
      if (p) {
        state.progress = { ...state.progress, ...p };
        emit();
      }
    });
    return new Promise((res) => rl.once('close', res));
  };
  const streamsDone = Promise.all([follow(child.stdout, true), follow(child.stderr, false)]);

  // A command that writes checkpoints without saying so: look for new ones now and then.
  const scan = cmd?.checkpoints
    ? setInterval(() => {
        const found = newestCheckpoint(o.outDir, cmd.checkpoints, state.checkpoint?.path);
        if (found && found.path !== state.checkpoint?.path) {
          state.checkpoint = { path: found.path, step: found.step };
          emit();
        }
      }, CHECKPOINT_SCAN_MS).unref()
    : undefined;

  // Cancellation.
  const graceMs = o.graceMs ?? 10_000;
  let cancelled = false;
  let forceKill: NodeJS.Timeout | undefined;
  const onAbort = () => {
    cancelled = true;
    killGroup(child.pid, 'SIGTERM');
    forceKill = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  // Wait for the exit (not for the pipes: a leftover grandchild may hold them open).
  // 'error' before any pid: the program could not be started (ENOENT, EACCES, ...).
  const exit = await new Promise<{ code: number | null; signal: string | null; error?: Error }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
    child.once('error', (error) => res({ code: null, signal: null, error }));
  });
  child.on('error', () => {}); // a later one (there is none we expect) must not throw
  const spawnFailure = exit.error && !child.pid ? exit.error : undefined;

  o.signal?.removeEventListener('abort', onAbort);
  clearTimeout(forceKill);
  clearInterval(scan);
  killGroup(child.pid, 'SIGKILL'); // anything the job left behind in its group
  if (child.pid) watchdog.disarm(child.pid);
  await Promise.race([streamsDone, sleep(2000, undefined, { ref: false })]);
  child.stdout?.destroy();
  child.stderr?.destroy();
  if (log) await new Promise((r) => log!.end(r));

  const lastCheckpoint = () => {
    const found = newestCheckpoint(o.outDir, cmd ? cmd.checkpoints : BUILTIN_CHECKPOINTS, state.checkpoint?.path);
    return found ? { path: found.path, step: found.step } : state.checkpoint;
  };

  // Classify.
  if (spawnFailure) throw cannotStart(spawnFailure);
  if (cancelled) throw new JobCancelledError(`${label} cancelled (${describeExit(exit.code, exit.signal)})`, lastCheckpoint());
  const ok = exit.signal === null && exit.code !== null && successCodes.includes(exit.code);
  if (!ok) {
    if (lastError?.user && exit.signal === null) {
      throw new JobUserError(lastError.message, { where: lastError.where, hint: lastError.hint });
    }
    const why = lastError ? `: ${lastError.message.split('\n')[0]}` : '';
    throw new JobFailedError(`${label} ${describeExit(exit.code, exit.signal)}${why}`, {
      exitCode: exit.code,
      signal: exit.signal,
      logTail: tail.text(),
    });
  }
  const outputs: Record<string, unknown> = { ...artifacts, ...result };
  if (cmd) Object.assign(outputs, declaredOutputs(cmd, ctx));
  return { outputs, checkpoint: lastCheckpoint(), metrics: state.metrics, durationMs: Date.now() - started };
}
