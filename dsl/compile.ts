/**
 * The compiler: pipeline YAML → validated spec → Plan (dsl/plan.ts).
 *
 *   load (YAML + schema + extends) → params (defaults, --params, --set) → graph checks
 *   → expression checks → per step: substitute params, validate `with` by its kind,
 *   fill defaults → topological order → hashes.
 *
 * Every user error becomes a Diagnostic; all that can be found are thrown together as a CompileError.
 */
import { hashJson, sortKeys } from '../common/hash.ts';
import { checkGraph, checkReferences, eachString, type StepGraph } from './check.ts';
import { CompileError, type Diagnostic } from './diagnostics.ts';
import { DURATION_HINT, formatDuration, parseDuration } from './duration.ts';
import { hasExpression, parseExpression, parseTemplate, printExpression, simplify, substitute, substituteWith, truthy, type Expr } from './expr.ts';
import { topologicalOrder } from './graph.ts';
import { problemsOf } from './issues.ts';
import { diagnosticFor, loadPipeline, type Loaded } from './load.ts';
import { checkDeclarations, resolveParams, type ParamOverrides } from './params.ts';
import { PLAN_FORMAT, type Plan, type PlanRetry, type PlanStep, type PlanTimeouts } from './plan.ts';
import { BUILTIN_DEFAULTS, type StepSpec } from './schema.ts';
import { findNode, type Path } from './source.ts';
import { defaultRunner, type RefuseParams } from './kinds/types.ts';
import { didYouMean } from './suggest.ts';
import type { z } from 'zod';

export { CompileError } from './diagnostics.ts';
export type { Diagnostic } from './diagnostics.ts';

export interface CompileOptions extends ParamOverrides {
  /** Folder that relative paths are read from and shown relative to (default: the working folder). */
  cwd?: string;
}

const PARAMS_ONLY = new Set(['params']);

/** Compiles a pipeline file to a Plan; throws CompileError listing every error found. */
export function compileFile(file: string, opts: CompileOptions = {}): Plan {
  const cwd = opts.cwd ?? process.cwd();
  const errors: Diagnostic[] = [];
  const loaded = loadPipeline(file, errors, cwd);
  if (!loaded) throw new CompileError(errors);
  const paramErrorsBefore = errors.length;
  checkDeclarations(loaded, errors);
  const params = resolveParams(loaded, opts, errors, cwd);
  const paramsOk = errors.length === paramErrorsBefore;
  const graph = checkGraph(loaded, errors);
  if (!graph) throw new CompileError(errors);
  const refErrorsBefore = errors.length;
  checkReferences(loaded, graph, errors);
  if (errors.length > refErrorsBefore || !paramsOk) throw new CompileError(errors);

  const steps = loaded.spec.steps.map((step, i) => compileStep(loaded, graph, step, i, params, errors));
  if (errors.length) throw new CompileError(errors);

  const byId = new Map(steps.map((s) => [s!.id, s!]));
  const order = topologicalOrder(graph.ids, graph.needs);
  const body = {
    format: PLAN_FORMAT,
    name: loaded.spec.name!,
    description: loaded.spec.description ?? '',
    sources: loaded.sources.map((s) => s.file),
    params: sortKeys(params) as Record<string, unknown>,
    steps: order.map((id) => byId.get(id)!),
  };
  return { ...body, hash: hashJson(body) };
}

function compileStep(loaded: Loaded, graph: StepGraph, step: StepSpec, i: number, params: Record<string, unknown>, errors: Diagnostic[]): PlanStep | undefined {
  const { origins } = loaded;
  const kind = graph.kinds.get(step.id)!;
  const ctx = { params };
  const before = errors.length;

  // `with`: params substituted, checked by the kind's schema (run-time expressions masked), defaults filled.
  const rawWith = step.with ?? {};
  const withValue = substituteWith(kind.name, rawWith, ctx, PARAMS_ONLY);
  const masked: Path[] = [];
  eachString(withValue, [], (s, path) => {
    if (hasExpression(s)) masked.push(path);
  });
  const parsed = kind.params.safeParse(withValue);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      for (const p of problemsOf(issue, withValue, kind.params)) {
        if (masked.some((m) => startsWith(p.path, m))) continue;
        const fromParams = valueIsExpression(rawWith, p.path) ? ' (after substituting params)' : '';
        const label = ['with', ...(p.onKey ? p.path.slice(0, -1) : p.path)].join('.');
        errors.push(diagnosticFor(origins, ['steps', i, 'with', ...p.path], `${label}: ${p.message}${fromParams}`, p.onKey));
      }
    }
  }

  // Settings: the step's own, else the pipeline's defaults, else the built-in ones.
  const defaults = loaded.spec.defaults;
  const setting = <K extends 'timeout' | 'attempt_timeout' | 'heartbeat' | 'grace' | 'queue'>(key: K): { value: unknown; path: Path } | undefined => {
    if (step[key] !== undefined) return { value: substitute(step[key], ctx, PARAMS_ONLY), path: ['steps', i, key] };
    if (defaults[key] !== undefined) return { value: substitute(defaults[key], ctx, PARAMS_ONLY), path: ['defaults', key] };
    return undefined;
  };
  const duration = (value: unknown, path: Path, fallback: number): number => {
    if (value === undefined) return fallback;
    const ms = typeof value === 'string' ? parseDuration(value) : undefined;
    if (ms === undefined) {
      errors.push(diagnosticFor(origins, path, `${String(path[path.length - 1])}: not a duration (${JSON.stringify(value)}): ${DURATION_HINT}`));
      return fallback;
    }
    return ms;
  };
  const t = setting('timeout');
  const stepMs = duration(t?.value, t?.path ?? [], parseDuration(BUILTIN_DEFAULTS.timeout)!);
  const a = setting('attempt_timeout');
  const attemptMs = duration(a?.value, a?.path ?? [], stepMs);
  const h = setting('heartbeat');
  const heartbeatMs = duration(h?.value, h?.path ?? [], parseDuration(BUILTIN_DEFAULTS.heartbeat)!);
  if (a && attemptMs > stepMs) {
    errors.push(diagnosticFor(origins, a.path, `attempt_timeout (${formatDuration(attemptMs)}) is longer than timeout (${formatDuration(stepMs)}): one attempt cannot outlast the whole step`));
  }
  const timeouts: PlanTimeouts = { stepMs, attemptMs, heartbeatMs, graceMs: 0 };

  const r = substitute({ ...BUILTIN_DEFAULTS.retry, ...(defaults.retry ?? {}), ...(step.retry ?? {}) }, ctx, PARAMS_ONLY) as typeof BUILTIN_DEFAULTS.retry;
  const retryPath = (key: string): Path => (step.retry && key in step.retry ? ['steps', i, 'retry', key] : ['defaults', 'retry', key]);
  const retry: PlanRetry = {
    maximumAttempts: r.max_attempts,
    initialIntervalMs: duration(r.initial_interval, retryPath('initial_interval'), 0),
    backoffCoefficient: r.backoff,
    maximumIntervalMs: duration(r.max_interval, retryPath('max_interval'), 0),
  };
  const q = setting('queue');
  const queue = q ? String(q.value) : kind.queue;
  if (q && String(q.value).trim() === '') errors.push(diagnosticFor(origins, q.path, 'queue: must not be empty'));
  const g = setting('grace');
  const defaultGrace = kind.grace ?? (queue === 'gpu' ? BUILTIN_DEFAULTS.gpuGrace : BUILTIN_DEFAULTS.grace);
  timeouts.graceMs = duration(g?.value, g?.path ?? [], parseDuration(defaultGrace)!);
  if (g && timeouts.graceMs > attemptMs) {
    errors.push(diagnosticFor(origins, g.path, `grace (${formatDuration(timeouts.graceMs)}) is longer than the attempt's limit (${formatDuration(attemptMs)}): the job could not use it`));
  }
  const condition = compileCondition(step.if, ctx);

  // The runner: one the kind declares (params may choose it), else the kind's default.
  let runner = defaultRunner(kind);
  if (step.runner !== undefined) {
    const value = substitute(step.runner, ctx, PARAMS_ONLY);
    const names = Object.keys(kind.runners);
    if (typeof value === 'string' && names.includes(value)) runner = value;
    else {
      const shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value);
      const suggestion = typeof value === 'string' ? didYouMean(value, names) : '';
      errors.push(diagnosticFor(origins, ['steps', i, 'runner'], `runner: ${kind.name} has no runner ${shown}${suggestion}; its runners: ${names.join(', ')}`));
    }
  }

  const refuses = kind.runners[runner]?.type === 'builtin' ? (kind.runners[runner] as { refuses?: RefuseParams }).refuses : undefined;
  if (refuses && withValue && typeof withValue === 'object') {
    for (const r of refuses(withValue as Record<string, unknown>)) {
      errors.push(diagnosticFor(origins, ['steps', i, 'with', ...r.path], `${['with', ...r.path].join('.')}: ${r.message}`));
    }
  }

  if (errors.length > before) return undefined;
  const declared = origins.locate(['steps', i]);
  const pos = declared.src.lines.linePos(findNode(declared.src, declared.path).node?.range?.[0] ?? 0);
  const body: Omit<PlanStep, 'hash'> = {
    id: step.id,
    uses: kind.name,
    runner,
    needs: [...graph.needs.get(step.id)!].sort(),
    with: sortKeys(fillDefaults(kind.params, withValue)) as Record<string, unknown>,
    ...(condition === undefined ? {} : { if: condition }),
    retry,
    timeouts,
    queue,
    cache: step.cache ?? defaults.cache ?? BUILTIN_DEFAULTS.cache,
    outputs: kind.declaredOutputs ? kind.declaredOutputs(withValue) : Object.keys(kind.outputs),
    source: { file: declared.src.file, line: pos.line, col: pos.col },
  };
  // The hash covers what the step does, not where it is written: moving a step in the file keeps it.
  const { source: _where, ...content } = body;
  return { ...body, hash: hashJson(content) };
}

/** The run-time condition with params substituted; undefined when always true, 'false' when never. */
function compileCondition(cond: string | boolean | undefined, ctx: { params: Record<string, unknown> }): string | undefined {
  if (cond === undefined || cond === true) return undefined;
  if (cond === false) return 'false';
  let expr: Expr;
  if (hasExpression(cond)) {
    const part = parseTemplate(cond).find((p) => 'expr' in p);
    expr = (part as { expr: Expr }).expr;
  } else expr = parseExpression(cond);
  const s = simplify(expr, ctx, PARAMS_ONLY, true);
  if (s.type === 'literal') return truthy(s.value) ? undefined : 'false';
  return printExpression(s);
}

function startsWith(path: Path, prefix: Path): boolean {
  return prefix.length <= path.length && prefix.every((seg, k) => seg === path[k]);
}

function valueIsExpression(value: unknown, path: Path): boolean {
  let cur = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return false;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return typeof cur === 'string' && hasExpression(cur);
}

/**
 * The value with the schema's defaults filled in, also where run-time expressions stand in for
 * values the schema cannot check yet (those are kept as written).
 */
export function fillDefaults(schema: z.ZodType, value: unknown): unknown {
  const whole = schema.safeParse(value);
  if (whole.success) return whole.data;
  let s: any = schema;
  while (['optional', 'default', 'nullable'].includes(s._zod.def.type)) s = s._zod.def.innerType;
  if (s._zod.def.type !== 'object' || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = {};
  const shape = s._zod.def.shape as Record<string, z.ZodType>;
  for (const [key, field] of Object.entries(shape)) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined) {
      const d = field.safeParse(undefined);
      if (d.success && d.data !== undefined) out[key] = d.data;
    } else out[key] = fillDefaults(field, v);
  }
  for (const [key, v] of Object.entries(value)) if (!(key in shape)) out[key] = v;
  return out;
}
