/**
 * Loading a pipeline file: YAML with positions, the language schema, and `extends`.
 * The result is one merged spec plus a way to find, for any path in it, the file and YAML node
 * it came from, so later errors name the right file and line.
 */
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { isMap, isScalar } from 'yaml';
import { TextFileError } from '../common/text.ts';
import type { Diagnostic } from './diagnostics.ts';
import { problemsOf } from './issues.ts';
import { PipelineSpec, type StepSpec } from './schema.ts';
import { diagnosticAt, fileProblem, readSource, sourceValue, type Path, type SourceFile } from './source.ts';

export interface Origin {
  src: SourceFile;
  path: Path;
}

/**
 * Maps paths of the merged spec to where they were written (longest registered prefix wins).
 * A graft points at another Origins instead of copying it, so merging a chain of `extends`
 * stays linear in the size of the files.
 */
export class Origins {
  private readonly map = new Map<string, { origin: Origin } | { from: Origins; prefix: Path }>();

  set(path: Path, src: SourceFile, srcPath: Path): void {
    this.map.set(JSON.stringify(path), { origin: { src, path: srcPath } });
  }

  locate(path: Path): Origin {
    for (let n = path.length; n >= 0; n--) {
      const hit = this.map.get(JSON.stringify(path.slice(0, n)));
      if (!hit) continue;
      if ('origin' in hit) return { src: hit.origin.src, path: [...hit.origin.path, ...path.slice(n)] };
      return hit.from.locate([...hit.prefix, ...path.slice(n)]);
    }
    throw new Error(`no origin for ${JSON.stringify(path)}`);
  }

  /** What `from` knows under `fromPrefix` is known here under `toPrefix` (paths registered deeper here win). */
  graft(from: Origins, fromPrefix: Path, toPrefix: Path): void {
    this.map.set(JSON.stringify(toPrefix), { from, prefix: fromPrefix });
  }
}

export interface MergedSpec {
  name?: string;
  description?: string;
  params: NonNullable<PipelineSpec['params']>;
  defaults: NonNullable<PipelineSpec['defaults']>;
  steps: StepSpec[];
}

export interface Loaded {
  spec: MergedSpec;
  origins: Origins;
  /** The file itself first, then the files it extends. */
  sources: SourceFile[];
}

/** A Diagnostic at a path of the merged spec. */
export function diagnosticFor(origins: Origins, path: Path, message: string, onKey = false): Diagnostic {
  const o = origins.locate(path);
  return diagnosticAt(o.src, o.path, message, onKey);
}

export function displayPath(absPath: string, cwd = process.cwd()): string {
  const rel = relative(cwd, absPath);
  return rel.startsWith('..') || isAbsolute(rel) ? absPath : rel || '.';
}

/** Loads a pipeline and everything it extends; errors are pushed to `errors`, undefined when any. */
export function loadPipeline(file: string, errors: Diagnostic[], cwd = process.cwd()): Loaded | undefined {
  return loadChain(resolve(cwd, file), [], errors, cwd, undefined);
}

/** Keys a pipeline file may have. */
const PIPELINE_KEYS: ReadonlySet<string> = new Set(Object.keys(PipelineSpec.shape));

/**
 * Whether a file named by `extends` is meant as a pipeline: a mapping with steps or extends, or
 * only pipeline keys. Anything else is reported as "not a pipeline file", without its contents.
 */
function looksLikePipeline(src: SourceFile): boolean {
  const top = src.doc.contents;
  if (!isMap(top)) return false;
  const keys = top.items.map((p) => (isScalar(p.key) ? p.key.value : undefined));
  return keys.includes('steps') || keys.includes('extends') || keys.every((k) => typeof k === 'string' && PIPELINE_KEYS.has(k));
}

function loadChain(absPath: string, chain: string[], errors: Diagnostic[], cwd: string, from: Origin | undefined): Loaded | undefined {
  const shown = displayPath(absPath, cwd);
  let read: ReturnType<typeof readSource>;
  try {
    read = readSource(absPath, shown);
  } catch (err) {
    if (!(err instanceof TextFileError)) throw err;
    const problem = fileProblem(err, 'pipeline file');
    if (from) errors.push(diagnosticAt(from.src, from.path, `cannot read ${shown}: ${problem}`));
    else errors.push({ file: shown, line: err.line ?? 0, col: err.col ?? 0, message: problem });
    return undefined;
  }
  const { src, errors: yamlErrors } = read;
  if (from && !looksLikePipeline(src)) {
    errors.push(diagnosticAt(from.src, from.path, `${shown} is not a pipeline file (a YAML mapping with name: and steps:); extends: names the pipeline this one builds on`));
    return undefined;
  }
  if (yamlErrors.length) {
    errors.push(...yamlErrors);
    return undefined;
  }
  const js = sourceValue(src);
  if (js.error) {
    errors.push(js.error);
    return undefined;
  }
  const raw = js.value;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    errors.push(diagnosticAt(src, [], 'a pipeline is a YAML mapping with at least name and steps'));
    return undefined;
  }
  const parsed = PipelineSpec.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      for (const p of problemsOf(issue, raw, PipelineSpec)) errors.push(diagnosticAt(src, p.path, p.message, p.onKey));
    }
    return undefined;
  }
  const spec = parsed.data;
  const before = errors.length;
  const seen = new Map<string, number>();
  (spec.steps ?? []).forEach((s, i) => {
    const first = seen.get(s.id);
    if (first !== undefined) {
      const line = diagnosticAt(src, ['steps', first, 'id'], '').line;
      errors.push(diagnosticAt(src, ['steps', i, 'id'], `duplicate step id '${s.id}' (first declared on line ${line})`));
    } else seen.set(s.id, i);
    if (s.remove && !spec.extends) {
      errors.push(diagnosticAt(src, ['steps', i, 'remove'], 'remove: true only applies to a pipeline that extends another (add extends: FILE)', true));
    }
  });
  if (errors.length > before) return undefined;

  const own = new Origins();
  own.set([], src, []);
  if (!spec.extends) {
    return {
      spec: { name: spec.name, description: spec.description, params: spec.params ?? {}, defaults: spec.defaults ?? {}, steps: spec.steps ?? [] },
      origins: own,
      sources: [src],
    };
  }
  const parentAbs = resolve(dirname(absPath), spec.extends);
  const cycleAt = [...chain, absPath].indexOf(parentAbs);
  if (cycleAt >= 0) {
    const names = [...chain, absPath].slice(cycleAt).map((p) => displayPath(p, cwd));
    errors.push(diagnosticAt(src, ['extends'], `extends cycle: ${[...names, names[0]].join(' → ')}`));
    return undefined;
  }
  const parent = loadChain(parentAbs, [...chain, absPath], errors, cwd, { src, path: ['extends'] });
  if (!parent) return undefined;
  return mergeInto(parent, spec, src, errors);
}

/** The child's values win; params and defaults merge by name, steps by id (`with` key by key). */
function mergeInto(parent: Loaded, child: PipelineSpec, src: SourceFile, errors: Diagnostic[]): Loaded | undefined {
  const origins = new Origins();
  origins.set([], src, []);
  const p = parent.spec;
  const spec: MergedSpec = { params: {}, defaults: {}, steps: [] };

  for (const key of ['name', 'description'] as const) {
    if (child[key] !== undefined) spec[key] = child[key];
    else if (p[key] !== undefined) {
      spec[key] = p[key];
      origins.graft(parent.origins, [key], [key]);
    }
  }
  for (const [name, value] of Object.entries(p.params)) {
    spec.params[name] = value;
    origins.graft(parent.origins, ['params', name], ['params', name]);
  }
  for (const [name, value] of Object.entries(child.params ?? {})) {
    spec.params[name] = value;
    origins.set(['params', name], src, ['params', name]);
  }
  const defaults: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(p.defaults)) {
    defaults[key] = value;
    origins.graft(parent.origins, ['defaults', key], ['defaults', key]);
  }
  for (const [key, value] of Object.entries(child.defaults ?? {})) {
    defaults[key] = value;
    origins.set(['defaults', key], src, ['defaults', key]);
  }
  spec.defaults = defaults as MergedSpec['defaults'];

  // Each merged step remembers where each of its keys (and `with` keys) came from.
  type Part = { from: 'parent'; index: number } | { from: 'child'; index: number };
  type Entry = { step: StepSpec; self: Part; keys: Map<string, Part>; withKeys: Map<string, Part> };
  const entries: Entry[] = p.steps.map((step, index) => {
    const part: Part = { from: 'parent', index };
    return {
      step,
      self: part,
      keys: new Map(Object.keys(step).map((k) => [k, part])),
      withKeys: new Map(Object.keys(step.with ?? {}).map((k) => [k, part])),
    };
  });
  (child.steps ?? []).forEach((c, index) => {
    const part: Part = { from: 'child', index };
    const at = entries.findIndex((e) => e.step.id === c.id);
    if (c.remove) {
      if (at < 0) {
        errors.push(diagnosticAt(src, ['steps', index, 'id'], `cannot remove step '${c.id}': ${parent.sources[0].file} has no step of that id`));
      } else entries.splice(at, 1);
      return;
    }
    if (at < 0) {
      entries.push({ step: c, self: part, keys: new Map(Object.keys(c).map((k) => [k, part])), withKeys: new Map(Object.keys(c.with ?? {}).map((k) => [k, part])) });
      return;
    }
    const e = entries[at];
    const { with: childWith, ...rest } = c;
    e.step = { ...e.step, ...rest, ...(childWith || e.step.with ? { with: { ...(e.step.with ?? {}), ...(childWith ?? {}) } } : {}) };
    e.self = part;
    for (const k of Object.keys(rest)) e.keys.set(k, part);
    if (childWith) {
      e.keys.set('with', part);
      for (const k of Object.keys(childWith)) e.withKeys.set(k, part);
    }
  });

  entries.forEach((e, k) => {
    spec.steps.push(e.step);
    const place = (part: Part, from: Path, to: Path) =>
      part.from === 'child' ? origins.set(to, src, ['steps', part.index, ...from]) : origins.graft(parent.origins, ['steps', part.index, ...from], to);
    place(e.self, [], ['steps', k]);
    for (const [key, part] of e.keys) if (key !== 'with') place(part, [key], ['steps', k, key]);
    if (e.step.with) {
      place(e.keys.get('with') ?? e.self, ['with'], ['steps', k, 'with']);
      for (const [key, part] of e.withKeys) place(part, ['with', key], ['steps', k, 'with', key]);
    }
  });
  return { spec, origins, sources: [src, ...parent.sources] };
}
