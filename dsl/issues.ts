/** Turns zod issues into short messages about the YAML the user wrote, each with the path it is at. */
import type { z } from 'zod';
import type { Path } from './source.ts';
import { didYouMean } from './suggest.ts';

export interface Problem {
  path: Path;
  message: string;
  /** Point at the key rather than the value (unknown keys, missing keys). */
  onKey?: boolean;
}

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

function def(s: AnySchema): any {
  return (s as any)._zod.def;
}

function unwrap(s: AnySchema | undefined): AnySchema | undefined {
  while (s && ['optional', 'default', 'nullable', 'prefault', 'readonly', 'catch'].includes(def(s).type)) s = def(s).innerType;
  return s;
}

function valueAt(value: unknown, path: Path): unknown {
  let cur = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/** The (unwrapped) schema at a path of the value, following union branches by discriminator. */
export function schemaAt(schema: AnySchema, value: unknown, path: Path, pickLast = true): AnySchema | undefined {
  let s = unwrap(schema);
  let v = value;
  for (const seg of path) {
    s = pickBranch(s, v);
    if (!s) return undefined;
    const d = def(s);
    if (d.type === 'object') s = d.shape[seg];
    else if (d.type === 'array') s = d.element;
    else if (d.type === 'record') s = d.valueType;
    else return undefined;
    s = unwrap(s);
    v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
  }
  return pickLast ? pickBranch(s, v) : s;
}

function pickBranch(s: AnySchema | undefined, v: unknown): AnySchema | undefined {
  if (!s || def(s).type !== 'union') return s;
  const options: AnySchema[] = def(s).options.map(unwrap);
  const disc: string | undefined = def(s).discriminator;
  if (disc && v && typeof v === 'object') {
    const want = (v as Record<string, unknown>)[disc];
    const hit = options.find((o) => def(o).type === 'object' && def(def(o).shape[disc])?.values?.includes(want));
    if (hit) return hit;
  }
  const byType = options.find((o) => typeName(o) === jsType(v));
  return byType ?? options.find((o) => def(o).type === 'object') ?? options[0];
}

function jsType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

function typeName(s: AnySchema): string {
  const t = def(s).type;
  return t === 'record' ? 'object' : t;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  literal: 'a fixed value',
  enum: 'one of the allowed values',
  null: 'null',
};

/** "string 'abc'", "number 3", "a list", ... */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function expectedOf(s: AnySchema | undefined): string {
  if (!s) return 'another value';
  const d = def(s);
  if (d.type === 'union') return [...new Set(d.options.map((o: AnySchema) => expectedOf(unwrap(o))))].join(' or ');
  if (d.type === 'number' && (s as any)._zod.bag?.format?.includes('int')) return 'an integer';
  return EXPECTED[d.type] ?? d.type;
}

/** One or more problems for one zod issue; `value` is what was validated, `schema` what validated it. */
export function problemsOf(issue: Issue, value: unknown, schema: AnySchema, base: Path = []): Problem[] {
  const path = [...base, ...(issue.path as Path)];
  const rel = issue.path as Path;
  const v = valueAt(value, path);
  switch (issue.code) {
    case 'invalid_type': {
      if (v === undefined && rel.length > 0) {
        return [{ path: path.slice(0, -1), onKey: true, message: `missing required key '${String(path[path.length - 1])}'` }];
      }
      const expected = issue.expected === 'int' ? 'an integer' : (EXPECTED[issue.expected] ?? issue.expected);
      return [{ path, message: `expected ${expected}, got ${describeValue(v)}` }];
    }
    case 'unrecognized_keys': {
      const obj = schemaAt(schema, value, path);
      const known = obj && def(obj).type === 'object' ? Object.keys(def(obj).shape) : [];
      return issue.keys.map((k) => ({
        path: [...path, k],
        onKey: true,
        message: `unknown key '${k}'${didYouMean(k, known)}${known.length ? `; allowed: ${known.join(', ')}` : ''}`,
      }));
    }
    case 'invalid_value': {
      const values = issue.values.map((x) => JSON.stringify(x)).join(', ');
      const hint = typeof v === 'string' ? didYouMean(v, issue.values.map(String)) : '';
      return [{ path, message: `must be one of ${values}; got ${describeValue(v)}${hint}` }];
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'string') return [{ path, message: min <= 1 ? 'must not be empty' : `must have at least ${min} characters` }];
      if (issue.origin === 'array') return [{ path, message: `must have at least ${min} item${min === 1 ? '' : 's'}` }];
      return [{ path, message: `must be ${issue.inclusive ? '>=' : '>'} ${min}; got ${describeValue(v)}` }];
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'string') return [{ path, message: `must have at most ${max} characters` }];
      if (issue.origin === 'array') return [{ path, message: `must have at most ${max} items` }];
      return [{ path, message: `must be ${issue.inclusive ? '<=' : '<'} ${max}; got ${describeValue(v)}` }];
    }
    case 'invalid_union': {
      if ((issue as any).discriminator) {
        const disc = String(path[path.length - 1]);
        const opts = ((issue as any).options ?? []).map((o: unknown) => JSON.stringify(o)).join(', ');
        if (v === undefined) return [{ path: path.slice(0, -1), onKey: true, message: `missing required key '${disc}' (one of ${opts})` }];
        const hint = typeof v === 'string' ? didYouMean(v, ((issue as any).options ?? []).map(String)) : '';
        return [{ path, message: `${disc} must be one of ${opts}; got ${describeValue(v)}${hint}` }];
      }
      // A branch of the right shape that failed deeper explains the error best.
      const deeper = issue.errors.find((branch) => branch.length > 0 && branch.every((i) => i.path.length > 0 || i.code !== 'invalid_type'));
      if (deeper) return deeper.flatMap((i) => problemsOf(i, value, schema, path));
      return [{ path, message: `expected ${expectedOf(schemaAt(schema, value, path, false))}, got ${describeValue(v)}` }];
    }
    case 'invalid_key': {
      const inner = issue.issues[0]?.message ?? 'invalid key';
      return [{ path, onKey: true, message: `invalid name '${String(path[path.length - 1])}': ${inner}` }];
    }
    default:
      return [{ path, message: issue.message }];
  }
}
