/**
 * The `command` step: any external program (a Python trainer, an inference server, a
 * shell one-liner when asked) run under the supervisor like a built-in job.
 *
 * Parameters (the step's `with`, schema in dsl/kinds/command.ts):
 *   run            argv array, e.g. ["python", "train.py", "--lr", "1e-5"]; run directly,
 *                  no shell: `$HOME`, `;`, `*` reach the program as written.
 *   shell          true to run through /bin/sh instead; `run` is then one string.
 *   env            extra environment variables (merged over the worker's).
 *   cwd            working folder (default: the step folder), relative to the step folder.
 *   outputs        name → path of each output, relative to the step folder; each must
 *                  exist after a successful exit.
 *   checkpoints    glob, relative to the step folder, of the checkpoints the program
 *                  writes (see runtime/checkpoints.ts for what counts as complete).
 *   resume_args    argv appended when resuming, `{checkpoint}` replaced by the newest
 *                  valid checkpoint, e.g. ["--resume_from_checkpoint", "{checkpoint}"].
 *   progress_regex regex over each log line with named groups `current` and optional
 *                  `total`, e.g. "step (?<current>\\d+)/(?<total>\\d+)".
 *   success_codes  exit codes that mean success (default [0]).
 *
 * With shell: true, every `${{ }}` value in run is quoted for the shell (dsl/expr.ts
 * shellQuote): a value is one word, never more shell code.
 *
 * In run, env values, cwd, outputs and resume_args these placeholders are replaced:
 * {out_dir} (the step folder), {run_id}, {step_id}, {attempt}; {checkpoint} only in
 * resume_args. The program also gets DOCTOR_AGENT_OUT_DIR, DOCTOR_AGENT_RUN_ID,
 * DOCTOR_AGENT_STEP_ID, DOCTOR_AGENT_ATTEMPT and, when resuming, DOCTOR_AGENT_RESUME_FROM.
 * It may print protocol lines (contract/protocol.ts) like a built-in job.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { shellQuote } from '../dsl/expr.ts';
import { CommandParams } from '../dsl/kinds/command.ts';
import { JobUserError } from './errors.ts';

export type { CommandParams };

const isScalar = (v: unknown) => typeof v === 'number' || typeof v === 'boolean';

/**
 * Expressions resolved at run time may put numbers or booleans where the program will
 * see text (`run: [train.py, --epochs, "${{ steps.a.outputs.n }}"]` → 3): argv items,
 * resume_args and env values become strings, as a shell would pass them.
 */
function stringifyScalars(params: unknown): unknown {
  if (!params || typeof params !== 'object' || Array.isArray(params)) return params;
  const p = { ...(params as Record<string, unknown>) };
  for (const k of ['run', 'resume_args']) {
    if (Array.isArray(p[k])) p[k] = (p[k] as unknown[]).map((v) => (isScalar(v) ? String(v) : v));
  }
  if (p.env && typeof p.env === 'object' && !Array.isArray(p.env)) {
    p.env = Object.fromEntries(Object.entries(p.env).map(([k, v]) => [k, isScalar(v) ? String(v) : v]));
  }
  return p;
}

/**
 * Validates the step's `with` against the kind's schema (dsl/kinds/command.ts, the same
 * one the compiler checks); errors say which field and what to write instead.
 */
export function parseCommandParams(params: unknown, stepId: string): CommandParams {
  const r = CommandParams.safeParse(stringifyScalars(params));
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = ['with', ...issue.path.map(String)].join('.');
    throw new JobUserError(`step "${stepId}": ${field}: ${issue.message}`, {
      where: `steps.${stepId}.${field}`,
      hint: 'command steps take run (argv array), shell, env, cwd, outputs, checkpoints, resume_args, progress_regex, success_codes',
    });
  }
  return r.data;
}

/** Compiles progress_regex (the schema has already checked it compiles and has a `current` group). */
export function progressRegex(p: CommandParams): RegExp | undefined {
  return p.progress_regex ? new RegExp(p.progress_regex) : undefined;
}

/** Reads current/total from a log line, or undefined when the line does not match. */
export function matchProgress(re: RegExp, line: string): { current: number; total?: number } | undefined {
  const g = re.exec(line)?.groups;
  if (!g || g.current === undefined) return undefined;
  const current = Number(g.current);
  if (!Number.isFinite(current)) return undefined;
  const total = g.total !== undefined ? Number(g.total) : undefined;
  return { current, total: total !== undefined && Number.isFinite(total) ? total : undefined };
}

export interface Launch {
  file: string;
  args: string[];
  shell: boolean;
  env: Record<string, string>;
  cwd: string;
}

export interface CommandContext {
  outDir: string;
  runId: string;
  stepId: string;
  attempt: number;
  /** The checkpoint to resume from, when resuming. */
  checkpoint?: string;
}

function fill(template: string, vars: Record<string, string>, quote = false): string {
  return template.replace(/\{(out_dir|run_id|step_id|attempt|checkpoint)\}/g, (m, name: string) =>
    name in vars ? (quote ? shellQuote(vars[name]) : vars[name]) : m,
  );
}

/** The process to start: argv (or shell text), environment and working folder. */
export function commandLaunch(p: CommandParams, c: CommandContext): Launch {
  const vars: Record<string, string> = { out_dir: c.outDir, run_id: c.runId, step_id: c.stepId, attempt: String(c.attempt) };
  const resume = c.checkpoint && p.resume_args ? p.resume_args.map((a) => fill(a, { ...vars, checkpoint: c.checkpoint! })) : [];
  const env: Record<string, string> = {
    DOCTOR_AGENT_OUT_DIR: c.outDir,
    DOCTOR_AGENT_RUN_ID: c.runId,
    DOCTOR_AGENT_STEP_ID: c.stepId,
    DOCTOR_AGENT_ATTEMPT: String(c.attempt),
    ...(c.checkpoint ? { DOCTOR_AGENT_RESUME_FROM: c.checkpoint } : {}),
  };
  for (const [k, v] of Object.entries(p.env)) env[k] = fill(v, vars);
  const cwd = p.cwd ? resolve(c.outDir, fill(p.cwd, vars)) : c.outDir;
  if (p.shell) {
    const text = typeof p.run === 'string' ? fill(p.run, vars, true) : p.run.map((a) => fill(a, vars, true)).join(' ');
    return { file: [text, ...resume.map(shellQuote)].join(' '), args: [], shell: true, env, cwd };
  }
  const argv = (p.run as string[]).map((a) => fill(a, vars));
  return { file: argv[0], args: [...argv.slice(1), ...resume], shell: false, env, cwd };
}

/** Absolute paths of the declared outputs; a missing one is the user's error and is named. */
export function declaredOutputs(p: CommandParams, c: CommandContext): Record<string, string> {
  const vars: Record<string, string> = { out_dir: c.outDir, run_id: c.runId, step_id: c.stepId, attempt: String(c.attempt) };
  const out: Record<string, string> = {};
  for (const [name, template] of Object.entries(p.outputs)) {
    const path = resolve(c.outDir, fill(template, vars));
    if (!existsSync(path)) {
      throw new JobUserError(`step "${c.stepId}": declared output "${name}" was not written: ${path} does not exist`, {
        where: `steps.${c.stepId}.with.outputs.${name}`,
        hint: 'make the command write it there, or fix the path (relative paths are taken from the step folder)',
      });
    }
    out[name] = path;
  }
  return out;
}
