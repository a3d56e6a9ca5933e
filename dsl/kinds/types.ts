/** What a step kind declares: its parameters (a zod schema), its outputs, its default queue. */
import type { z } from 'zod';

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
  /** 'job': the built-in module jobs/<name>.ts runs it; 'command': an external program. */
  execution: 'job' | 'command';
  /** For kinds whose outputs are declared by the user in `with` (the command kind). */
  declaredOutputs?: (params: Record<string, unknown>) => string[];
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
