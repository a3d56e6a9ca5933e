/** Static checks of the merged steps: kinds, ids, needs, cycles, and every name an expression reads. */
import type { Diagnostic } from './diagnostics.ts';
import { ExprError, hasExpression, parseExpression, parseTemplate, quotedExpressions, references, refsOf, ROOTS, RUN_FIELDS, type Reference } from './expr.ts';
import { ancestors, findCycles } from './graph.ts';
import { getKind, allKinds, type StepKind } from './kinds/index.ts';
import { diagnosticFor, type Loaded } from './load.ts';
import { diagnosticAtOffset, offsetInString, type Path } from './source.ts';
import { didYouMean } from './suggest.ts';

export interface StepGraph {
  ids: string[];
  needs: Map<string, string[]>;
  kinds: Map<string, StepKind>;
  /** Output names per step. */
  outputs: Map<string, string[]>;
}

export function needsList(needs: string | string[] | undefined): string[] {
  return needs === undefined ? [] : typeof needs === 'string' ? [needs] : needs;
}

/** Checks name, kinds, needs and cycles; returns the graph when it is sound enough to go on. */
export function checkGraph(loaded: Loaded, errors: Diagnostic[]): StepGraph | undefined {
  const { spec, origins } = loaded;
  const before = errors.length;
  if (!spec.name) errors.push(diagnosticFor(origins, [], "missing required key 'name'"));
  if (spec.steps.length === 0) errors.push(diagnosticFor(origins, ['steps'], 'the pipeline has no steps: add steps: [{id, uses, with}]'));

  const ids = spec.steps.map((s) => s.id);
  const known = new Set(ids);
  const needs = new Map<string, string[]>();
  const kinds = new Map<string, StepKind>();
  const outputs = new Map<string, string[]>();
  const kindNames = allKinds().map((k) => k.name);

  spec.steps.forEach((step, i) => {
    if (!step.uses) {
      errors.push(diagnosticFor(origins, ['steps', i], `step '${step.id}' has no 'uses': name its step kind (see doctor-agent steps)`));
    } else {
      const kind = getKind(step.uses);
      if (!kind) {
        errors.push(diagnosticFor(origins, ['steps', i, 'uses'], `unknown step kind '${step.uses}'${didYouMean(step.uses, kindNames)}; run 'doctor-agent steps' to list them`));
      } else {
        kinds.set(step.id, kind);
        const declared = kind.declaredOutputs ? kind.declaredOutputs(step.with ?? {}) : Object.keys(kind.outputs);
        outputs.set(step.id, declared);
      }
    }
    const list = needsList(step.needs);
    const ok: string[] = [];
    list.forEach((dep, j) => {
      const at: Path = typeof step.needs === 'string' ? ['steps', i, 'needs'] : ['steps', i, 'needs', j];
      if (dep === step.id) errors.push(diagnosticFor(origins, at, `step '${step.id}' cannot need itself`));
      else if (!known.has(dep)) errors.push(diagnosticFor(origins, at, `needs unknown step '${dep}'${didYouMean(dep, ids)}`));
      else if (!ok.includes(dep)) ok.push(dep);
    });
    needs.set(step.id, ok);
  });

  for (const cycle of findCycles(ids, needs)) {
    const i = ids.indexOf(cycle[0]);
    errors.push(diagnosticFor(origins, ['steps', i, 'needs'], `cycle in needs: ${[...cycle, cycle[0]].join(' → ')} (each step needs the next)`));
  }
  return errors.length > before ? undefined : { ids, needs, kinds, outputs };
}

/** Where expressions may appear in a step, and whether run-time names are allowed there. */
const EXPRESSION_FIELDS: { key: string; runtime: boolean }[] = [
  { key: 'with', runtime: true },
  { key: 'if', runtime: true },
  { key: 'queue', runtime: false },
  { key: 'timeout', runtime: false },
  { key: 'attempt_timeout', runtime: false },
  { key: 'heartbeat', runtime: false },
];

/** Calls fn for every string inside a value, with its path. */
export function eachString(value: unknown, path: Path, fn: (s: string, path: Path) => void): void {
  if (typeof value === 'string') fn(value, path);
  else if (Array.isArray(value)) value.forEach((v, i) => eachString(v, [...path, i], fn));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) eachString(v, [...path, k], fn);
}

/** Checks every expression in steps and defaults: syntax, and that each name it reads exists and may be read there. */
export function checkReferences(loaded: Loaded, graph: StepGraph, errors: Diagnostic[]): void {
  const { spec, origins } = loaded;
  const paramNames = Object.keys(spec.params);

  const at = (path: Path, s: string, index: number, message: string) => {
    const o = origins.locate(path);
    errors.push(diagnosticAtOffset(o.src, offsetInString(o.src, o.path, s, index), message));
  };

  const checkString = (s: string, path: Path, stepId: string | undefined, field: string, runtime: boolean, bare: boolean) => {
    let refs: Reference[];
    try {
      refs = bare ? refsOf(parseExpression(s)).map((p) => ({ path: p, source: s, offset: 0 })) : references(s);
      if (!bare && field === 'if' && hasExpression(s)) {
        const parts = parseTemplate(s).filter((p) => !('text' in p && p.text.trim() === ''));
        if (parts.length !== 1) return at(path, s, 0, "if: write one expression, e.g. if: ${{ params.rl == 'ppo' }}");
      }
    } catch (err) {
      if (!(err instanceof ExprError)) throw err;
      return at(path, s, err.offset, `invalid expression: ${err.message}`);
    }
    for (const ref of refs) {
      const why = refProblem(ref.path, stepId, field, runtime);
      if (why) at(path, s, ref.offset, why);
    }
  };

  const refProblem = (p: string[], self: string | undefined, field: string, runtime: boolean): string | undefined => {
    const [root, a, b, c] = p;
    if (!(ROOTS as readonly string[]).includes(root)) {
      return `unknown name '${root}'${didYouMean(root, ROOTS)}: expressions read params.NAME, steps.ID.outputs.NAME and run.FIELD`;
    }
    if (root === 'params') {
      if (p.length !== 2) return `write params.NAME (got ${p.join('.')})`;
      if (!paramNames.includes(a)) {
        const declared = paramNames.length ? `; declared params: ${paramNames.join(', ')}` : '; the pipeline declares no params';
        return `unknown param '${a}'${didYouMean(a, paramNames)}${declared}`;
      }
      return undefined;
    }
    if (!runtime) return `only params.* can be used in ${field}: it is fixed when the pipeline compiles`;
    if (root === 'run') {
      if (p.length !== 2 || !(RUN_FIELDS as readonly string[]).includes(a)) {
        return `unknown run field '${p.slice(1).join('.')}'${didYouMean(a ?? '', RUN_FIELDS)}; run has: ${RUN_FIELDS.join(', ')}`;
      }
      return undefined;
    }
    if (a === undefined || !graph.ids.includes(a)) return `unknown step '${a ?? ''}'${didYouMean(a ?? '', graph.ids)}`;
    if (b !== 'outputs' || p.length !== 4) return `write steps.${a}.outputs.NAME (got ${p.join('.')})`;
    if (self === undefined) return `steps.* cannot be used in defaults`;
    if (a === self) return `step '${self}' cannot read its own outputs`;
    const outs = graph.outputs.get(a) ?? [];
    if (!outs.includes(c)) {
      const kind = graph.kinds.get(a)?.name ?? '?';
      return `step '${a}' (${kind}) has no output '${c}'${didYouMean(c, outs)}; its outputs: ${outs.join(', ') || 'none'}`;
    }
    if (!ancestors(self, graph.needs).has(a)) {
      return `step '${self}' reads steps.${a}.outputs.${c} but does not depend on '${a}': add '${a}' to its needs`;
    }
    return undefined;
  };

  spec.steps.forEach((step, i) => {
    for (const { key, runtime } of EXPRESSION_FIELDS) {
      const value = (step as Record<string, unknown>)[key];
      const bare = key === 'if' && typeof value === 'string' && !hasExpression(value);
      eachString(value, ['steps', i, key], (s, path) => {
        if (bare || hasExpression(s)) checkString(s, path, step.id, key, runtime, bare);
      });
    }
    // Shell text: each value is quoted for the shell, so it must not stand inside quotes of the text.
    const run = step.with?.run;
    if (graph.kinds.get(step.id)?.name === 'command' && typeof run === 'string' && hasExpression(run)) {
      try {
        for (const offset of quotedExpressions(run)) {
          at(['steps', i, 'with', 'run'], run, offset, 'in shell text, write ${{ }} outside quotes: its value is quoted for the shell (one word, whatever it holds)');
        }
      } catch (err) {
        if (!(err instanceof ExprError)) throw err; // reported above
      }
    }
    eachString(step.retry, ['steps', i, 'retry'], (s, path) => {
      if (hasExpression(s)) checkString(s, path, step.id, 'retry', false, false);
    });
  });
  eachString(spec.defaults, ['defaults'], (s, path) => {
    if (hasExpression(s)) checkString(s, path, undefined, String(path[1]), false, false);
  });
}
