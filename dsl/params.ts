/** Pipeline params: declared types, defaults, then `--params FILE`, then `--set NAME=VALUE`. */
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TextFileError } from '../common/text.ts';
import type { Diagnostic } from './diagnostics.ts';
import { describeValue } from './issues.ts';
import { diagnosticFor, displayPath, type Loaded } from './load.ts';
import type { ParamSpec } from './schema.ts';
import { diagnosticAt, fileProblem, readSource, sourceValue } from './source.ts';
import { didYouMean } from './suggest.ts';

export interface ParamOverrides {
  /** `NAME=VALUE` strings; the value is read as a YAML scalar. */
  set?: string[];
  /** A YAML file mapping param names to values. */
  paramsFile?: string;
}

/** Why a value does not fit a param, or undefined when it does. */
export function paramTypeError(spec: ParamSpec, v: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      return typeof v === 'string' ? undefined : `expected a string, got ${describeValue(v)}`;
    case 'path':
      return typeof v === 'string' && v !== '' ? undefined : `expected a file or folder path, got ${describeValue(v)}`;
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) ? undefined : `expected a number, got ${describeValue(v)}`;
    case 'integer':
      return Number.isInteger(v) ? undefined : `expected an integer, got ${describeValue(v)}`;
    case 'boolean':
      return typeof v === 'boolean' ? undefined : `expected true or false, got ${describeValue(v)}`;
    case 'enum': {
      const values = spec.values ?? [];
      if (values.includes(v as string | number)) return undefined;
      const hint = typeof v === 'string' ? didYouMean(v, values.map(String)) : '';
      return `expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${describeValue(v)}${hint}`;
    }
  }
}

/** The declaration of a param, or undefined: own entries only (`constructor`, `__proto__` are no params). */
function declaration(decl: Record<string, ParamSpec>, name: string): ParamSpec | undefined {
  return Object.hasOwn(decl, name) ? decl[name] : undefined;
}

/** A --set value: strings and paths as written; other types read as a YAML scalar. */
function coerce(spec: ParamSpec, raw: string): unknown {
  if (spec.type === 'string' || spec.type === 'path') return raw;
  if (spec.type === 'enum' && spec.values?.includes(raw)) return raw;
  try {
    return parseYaml(raw) as unknown;
  } catch {
    return raw;
  }
}

/** Checks the declarations (enum values, defaults) of every param. */
export function checkDeclarations(loaded: Loaded, errors: Diagnostic[]): void {
  for (const [name, spec] of Object.entries(loaded.spec.params)) {
    if (spec.type === 'enum' && !spec.values) {
      errors.push(diagnosticFor(loaded.origins, ['params', name, 'type'], `param '${name}' of type enum needs values: [a, b, ...]`));
    } else if (spec.type !== 'enum' && spec.values) {
      errors.push(diagnosticFor(loaded.origins, ['params', name, 'values'], `values only apply to type enum (param '${name}' is ${spec.type})`, true));
    } else if (spec.default !== undefined) {
      const why = paramTypeError(spec, spec.default);
      if (why) errors.push(diagnosticFor(loaded.origins, ['params', name, 'default'], `default of param '${name}': ${why}`));
    }
  }
}

/** Final param values; errors (unknown names, wrong types, missing required values) go to `errors`. */
export function resolveParams(loaded: Loaded, overrides: ParamOverrides, errors: Diagnostic[], cwd = process.cwd()): Record<string, unknown> {
  const decl = loaded.spec.params;
  const names = Object.keys(decl);
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(decl)) if (spec.default !== undefined) values[name] = spec.default;
  const declared = names.length ? `; the pipeline declares: ${names.join(', ')}` : '; the pipeline declares no params';

  if (overrides.paramsFile) {
    const abs = resolve(cwd, overrides.paramsFile);
    const shown = displayPath(abs, cwd);
    let read: ReturnType<typeof readSource> | undefined;
    try {
      read = readSource(abs, shown);
    } catch (err) {
      if (!(err instanceof TextFileError)) throw err;
      const message = err.reason === 'not-found' ? 'params file not found' : fileProblem(err, 'params file');
      errors.push({ file: shown, line: err.line ?? 0, col: err.col ?? 0, message });
    }
    if (read) {
      const { src, errors: yamlErrors } = read;
      errors.push(...yamlErrors);
      const js = yamlErrors.length ? undefined : sourceValue(src);
      if (js?.error) errors.push(js.error);
      const data = js?.value;
      if (js && !js.error && (data === null || typeof data !== 'object' || Array.isArray(data))) {
        errors.push(diagnosticAt(src, [], 'a params file is a YAML mapping of param names to values'));
      } else if (data) {
        for (const [name, v] of Object.entries(data as Record<string, unknown>)) {
          const spec = declaration(decl, name);
          if (!spec) {
            errors.push(diagnosticAt(src, [name], `unknown param '${name}'${didYouMean(name, names)}${declared}`, true));
            continue;
          }
          const why = paramTypeError(spec, v);
          if (why) errors.push(diagnosticAt(src, [name], `param '${name}': ${why}`));
          else values[name] = v;
        }
      }
    }
  }

  for (const arg of overrides.set ?? []) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      errors.push({ file: '--set', line: 0, col: 0, message: `'${arg}' is not NAME=VALUE` });
      continue;
    }
    const name = arg.slice(0, eq);
    const spec = declaration(decl, name);
    if (!spec) {
      errors.push({ file: '--set', line: 0, col: 0, message: `unknown param '${name}'${didYouMean(name, names)}${declared}` });
      continue;
    }
    const v = coerce(spec, arg.slice(eq + 1));
    const why = paramTypeError(spec, v);
    if (why) errors.push({ file: '--set', line: 0, col: 0, message: `param '${name}': ${why}` });
    else values[name] = v;
  }

  for (const [name, spec] of Object.entries(decl)) {
    if (values[name] === undefined) {
      const meta = spec.type === 'path' ? 'PATH' : 'VALUE';
      errors.push(diagnosticFor(loaded.origins, ['params', name], `param '${name}' is required: pass --set ${name}=${meta} (or --params FILE)`, true));
    }
  }
  return values;
}
