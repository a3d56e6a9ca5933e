/** What a step kind declares: its parameters (a zod schema), its outputs, its default queue, its runners. */
import type { z } from 'zod';

/**
 * One way to run a step of a kind. Every runner is a child process under the job supervisor
 * (runtime/supervisor.ts) speaking the JSON-lines protocol (contract/protocol.ts).
 */
export type Runner =
  /** The built-in TypeScript job: `module` (from the project root) exports run(ctx), started by jobs/main.ts. */
  | { type: 'builtin'; module: string; description?: string; refuses?: RefuseParams }
  /**
   * An external program: `argv` (paths in it from the project root), handed the job spec
   * (contract/protocol.ts JobSpec) as a JSON file, its path the last argument and in
   * DOCTOR_AGENT_JOB_SPEC; it runs in the worker's working folder, as a built-in job does.
   */
  | { type: 'program'; argv: string[]; description?: string }
  /** The program the step's own `with` names (the command kind, runtime/command.ts). */
  | { type: 'command'; description?: string };

/** One parameter a runner cannot honour: where in `with` and why (a compile error). */
export interface RefusedParam {
  path: (string | number)[];
  message: string;
}

/**
 * The parameters a runner cannot honour, from the step's `with` as written (before defaults):
 * each one is a compile error rather than silently dropped.
 */
export type RefuseParams = (given: Record<string, unknown>) => RefusedParam[];

/** The name of the runner of the built-in TypeScript job. */
export const BUILTIN_RUNNER = 'builtin';

export interface StepKind {
  /** Registry name used in `uses:`, e.g. "train.sft". */
  name: string;
  /** One line. */
  description: string;
  /** Schema of the step's `with:` block. */
  params: z.ZodObject<any>;
  /** Output name → description; `steps.<id>.outputs.<name>` may reference only these. */
  outputs: Record<string, string>;
  /** Default Temporal task queue: 'cpu' or 'gpu'. */
  queue: string;
  /** Default `grace` (SIGTERM → SIGKILL) of the kind's steps, e.g. '5m' for trainers with large checkpoints. */
  grace?: string;
  /**
   * Runner name → how to run it; a step picks one with `runner:`, by default `builtin` when
   * declared, else the first. Names are identifiers ([A-Za-z_][A-Za-z0-9_-]*).
   */
  runners: Record<string, Runner>;
  /** For kinds whose outputs are declared by the user in `with` (the command kind). */
  declaredOutputs?: (params: Record<string, unknown>) => string[];
}

/** The runner a step of the kind gets without `runner:`. */
export function defaultRunner(kind: Pick<StepKind, 'runners'>): string {
  const names = Object.keys(kind.runners);
  return names.includes(BUILTIN_RUNNER) ? BUILTIN_RUNNER : names[0];
}

/** One line saying what a runner starts. */
export function describeRunner(r: Runner): string {
  if (r.type === 'builtin') return `the built-in TypeScript job ${r.module}`;
  if (r.type === 'program') return `the program ${r.argv.join(' ')} (the job spec file as its last argument)`;
  return 'the program named in the step\'s with';
}

/** The built-in TypeScript job of a kind, at `module` from the project root. */
export function builtinJob(module: string, refuses?: RefuseParams): Record<string, Runner> {
  return { [BUILTIN_RUNNER]: { type: 'builtin', module, ...(refuses ? { refuses } : {}) } };
}

/**
 * Compile-time check that a kind's parsed `with` (the schema's output) is exactly the plain
 * options object its trainer takes: the same keys, each assignable. Used as
 * `fits<z.infer<typeof Schema>, Options>(true)`; a field added on one side only fails the type check.
 */
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
export function fits<Params extends Options, Options>(ok: SameKeys<Params, Options>): void {
  void ok;
}
