/**
 * The pipeline language as zod schemas: the one definition that the compiler validates with,
 * and that docs/pipeline-language.md and schema/pipeline.schema.json are generated from.
 * Step `with:` blocks are checked later by each kind's own schema (dsl/kinds/).
 */
import { z } from 'zod';
import { DURATION_HINT } from './duration.ts';

export const ID_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export const StepId = z
  .string()
  .regex(ID_PATTERN, 'must start with a letter or _ and hold only letters, digits, _ and -')
  .describe('Step identifier, unique in the pipeline.');

export const ParamName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'param names hold only letters, digits and _');

/** A duration string (500ms, 30s, 10m, 2h, 1d); `${{ params.x }}` is allowed and checked after substitution. */
export const Duration = z
  .string()
  .regex(/^(?:\$\{\{.*\}\}|(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+)$/, `not a duration: ${DURATION_HINT}`)
  .describe('A duration: 500ms, 30s, 10m, 2h, 1d.');

export const PARAM_TYPES = ['string', 'number', 'integer', 'boolean', 'path', 'enum'] as const;

export const ParamSpec = z
  .strictObject({
    type: z.enum(PARAM_TYPES).describe('Value type; path is a file or folder path, enum one of `values`.'),
    values: z.array(z.union([z.string(), z.number()])).min(1).optional().describe('Allowed values (type enum only).'),
    default: z.union([z.string(), z.number(), z.boolean()]).optional().describe('Value when not given with --set or --params; without one the param is required.'),
    description: z.string().optional().describe('What the param is for.'),
  })
  .describe('A typed pipeline parameter, used as ${{ params.NAME }}.');
export type ParamSpec = z.infer<typeof ParamSpec>;

export const RetrySpec = z
  .strictObject({
    max_attempts: z.number().int().positive().optional().describe('Attempts in all, the first included (1 = no retry).'),
    initial_interval: Duration.optional().describe('Wait before the first retry.'),
    backoff: z.number().min(1).optional().describe('Each wait is the previous one times this.'),
    max_interval: Duration.optional().describe('Longest wait between attempts.'),
  })
  .describe('Retry policy of a step; crashes are retried, user errors never.');

const timing = {
  retry: RetrySpec.optional(),
  timeout: Duration.optional().describe('Limit for the whole step, all attempts included.'),
  attempt_timeout: Duration.optional().describe('Limit for one attempt.'),
  heartbeat: Duration.optional().describe('Heartbeat timeout: a worker (or its machine) silent this long is considered lost, and the attempt is retried (on any worker of the queue) from the newest checkpoint. The worker heartbeats on a timer while its job runs, so a quiet job is not a lost one.'),
  grace: Duration.optional().describe('When the step is cancelled or its worker stops: time between SIGTERM (the job checkpoints and exits) and SIGKILL.'),
  queue: z.string().min(1).optional().describe('Task queue the step runs on (cpu, gpu, or any queue a worker serves).'),
  cache: z.boolean().optional().describe('Reuse a successful earlier result of the same step (same kind, runner, code version, params and inputs; see docs/runtime.md).'),
};

export const DefaultsSpec = z.strictObject(timing).describe('Settings every step gets unless it sets its own.');

export const StepSpec = z
  .strictObject({
    id: StepId,
    uses: z.string().min(1).optional().describe('Step kind (see `doctor-agent steps`); required unless overriding an inherited step.'),
    runner: z.string().min(1).optional().describe("Which of the kind's runners runs the step (listed under each kind below): `builtin`, the built-in TypeScript job, by default; another declared runner (an external program speaking the same protocol) by its name."),
    needs: z.union([StepId, z.array(StepId)]).optional().describe('Steps that must finish first.'),
    with: z.record(z.string(), z.unknown()).optional().describe("The kind's parameters; strings may hold ${{ }} expressions."),
    if: z.union([z.string(), z.boolean()]).optional().describe('Run the step only when this expression is true. Without it, a step whose need was skipped is skipped too.'),
    ...timing,
    remove: z.boolean().optional().describe('With extends: drop the inherited step of this id.'),
  })
  .describe('One step of the pipeline.');
export type StepSpec = z.infer<typeof StepSpec>;

export const PipelineSpec = z
  .strictObject({
    name: z.string().min(1).optional().describe('Pipeline name (inherited with extends when absent).'),
    description: z.string().optional().describe('What the pipeline does.'),
    extends: z.string().min(1).optional().describe('Another pipeline file (relative to this one) to inherit params, defaults and steps from.'),
    params: z.record(ParamName, ParamSpec).optional().describe('Typed parameters, overridable with --set NAME=VALUE or --params FILE.'),
    defaults: DefaultsSpec.optional(),
    steps: z.array(StepSpec).optional().describe('The steps, a DAG through needs.'),
  })
  .describe('A Doctor-Agent pipeline.');
export type PipelineSpec = z.infer<typeof PipelineSpec>;

/** Built-in settings when neither the step nor `defaults` sets them. */
export const BUILTIN_DEFAULTS = {
  retry: { max_attempts: 3, initial_interval: '1s', backoff: 2, max_interval: '1m' },
  timeout: '24h',
  heartbeat: '5m',
  /** SIGTERM → SIGKILL; a kind may ask for more (training kinds), and so does the `gpu` queue. */
  grace: '10s',
  /** Grace of the training kinds and of any step on the gpu queue: enough to write a real-size checkpoint. */
  gpuGrace: '5m',
  cache: true,
} as const;
