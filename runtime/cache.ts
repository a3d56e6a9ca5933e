/**
 * The step cache: a successful step's outputs, keyed by a hash of what determines
 * them: the step's kind, the runner that ran it (runtime/code-version.ts), the version of
 * the code that produced it (package version and a content hash of the kind's sources), its
 * resolved parameters, and the content of every input file or folder those parameters name
 * (a `preset:NAME` value counts as the file configs/NAME.json). Where the step is written in
 * the YAML, its id, and its retry or timeout settings do not change its result, so they are
 * not in the key. A hit is only trusted when every recorded output still exists with the
 * content hash it had when it was recorded.
 *
 * Entries live in <store>/cache/<key>.json, written atomically, with the components of their
 * key. <store>/cache/last/<hash of kind and params>.json names the newest entry recorded for
 * the same kind and parameters: on a miss, comparing its components with the new ones says
 * what changed (explainMiss).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../common/fs.ts';
import { hashJson, hashPath } from '../common/hash.ts';
import { PRESETS_DIR, presetFile, presetName } from '../common/presets.ts';
import type { ArtifactStore } from './store.ts';

const CACHE_FORMAT = 3;

/** The code that produced a step, as far as the key is concerned (see CodeVersion). */
export interface CodeKey {
  /** The package version. */
  package: string;
  /** Content hash of the sources of the step's runner and kind. */
  sources: string;
}

export interface CacheKeyInput {
  kind: string;
  /** The runner that runs the step: `builtin`, `command`, … (runtime/code-version.ts). */
  runner: string;
  code: CodeKey;
  /** The resolved `with` (no expressions left). */
  params: unknown;
  /** Path → content hash of every input, from inputHashesFor(params). */
  inputHashes: Record<string, string>;
}

export function cacheKey(input: CacheKeyInput): string {
  return hashJson({
    format: CACHE_FORMAT,
    kind: input.kind,
    runner: input.runner,
    code: { package: input.code.package, sources: input.code.sources },
    params: input.params ?? null,
    inputHashes: input.inputHashes,
  });
}

/** Steps of the same kind with the same parameters: the entries whose key components explainMiss compares. */
export function lineageOf(kind: string, params: unknown): string {
  return hashJson({ format: CACHE_FORMAT, kind, params: params ?? null });
}

/**
 * A string "looks like a path" when it is one line, not a URL, and either contains a
 * '/' or ends in a file extension (`data/x.jsonl`, `./model`, `train.py`, `/abs/dir`).
 * A bare word such as `python` or `data` is not taken for a path: write `./data`.
 */
export function looksLikePath(s: string): boolean {
  if (s.length === 0 || s.length > 4096 || /[\n\r\0]/.test(s) || /^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return false;
  return s.includes('/') || /\.[A-Za-z0-9]{1,10}$/.test(s);
}

/** Every string value, depth first, in a stable order (object keys sorted). */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === 'object') {
    for (const k of Object.keys(value).sort()) strings((value as Record<string, unknown>)[k], out);
  }
  return out;
}

/**
 * Content hash of every existing file or folder named by a path-looking string among
 * the values (relative paths resolve against baseDir), and of the preset file of every
 * `preset:NAME` value (<presetsDir>/NAME.json). Keys are the strings as written.
 */
export function inputHashesFor(params: unknown, baseDir: string = process.cwd(), presetsDir: string = PRESETS_DIR): Record<string, string> {
  return pathHashes(params, baseDir, presetsDir);
}

function pathHashes(params: unknown, baseDir: string, presetsDir: string | undefined): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const s of strings(params)) {
    if (s in hashes) continue;
    const preset = presetsDir === undefined ? undefined : presetName(s);
    if (preset === undefined && !looksLikePath(s)) continue;
    const p = preset !== undefined ? presetFile(preset, presetsDir!) : isAbsolute(s) ? s : resolve(baseDir, s);
    if (!existsSync(p)) continue;
    try {
      hashes[s] = hashPath(p);
    } catch {
      /* unreadable (permissions, vanished mid-walk): not an input we can vouch for */
    }
  }
  return hashes;
}

/** Same rule for a step's outputs (paths only): what lookup() re-checks before trusting an entry. */
export function outputHashesFor(outputs: unknown, baseDir: string = process.cwd()): Record<string, string> {
  return pathHashes(outputs, baseDir, undefined);
}

/** What an entry's key was made of, kept in the entry to explain a later miss. */
export interface KeyComponents {
  kind: string;
  runner: string;
  code: CodeKey & {
    /** Source file → short content hash (CodeVersion.files), to name the files that changed. */
    files?: Record<string, string>;
    /** Git commit of the code, for information. */
    commit?: string;
  };
  inputHashes: Record<string, string>;
}

export interface CacheEntry {
  runId: string;
  stepId: string;
  outputs: Record<string, unknown>;
  /** Absolute path (or path as recorded) → content hash, from outputHashesFor(outputs). */
  outputHashes: Record<string, string>;
  finishedAt: string;
  /** The components of its key (absent in entries recorded without them). */
  components?: KeyComponents;
  /** lineageOf(kind, params): where the newest entry of these parameters is noted. */
  lineage?: string;
}

/** The newest entry recorded for a lineage. */
interface LastEntry {
  key: string;
  runId: string;
  stepId: string;
  finishedAt: string;
  components: KeyComponents;
}

/** Names changed, added or removed between two maps, at most `max`, then how many more. */
function changedNames(before: Record<string, string>, after: Record<string, string>, max = 4): string {
  const names = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort().filter((n) => before[n] !== after[n]);
  const shown = names.slice(0, max).map((n) => (!(n in before) ? `${n} added` : !(n in after) ? `${n} removed` : n));
  return names.length > max ? `${shown.join(', ')} and ${names.length - max} more` : shown.join(', ');
}

/**
 * Why an entry with components `old` (recorded by `since`, e.g. "run R") does not serve a step
 * with components `now`, e.g. `code of rl.grpo changed since run R (rl/grpo.ts)`; undefined when they agree.
 */
export function describeChange(old: KeyComponents, now: KeyComponents, since: string): string | undefined {
  const parts: string[] = [];
  let files = '';
  if (old.runner !== now.runner) parts.push(`the runner of ${now.kind} (${old.runner} → ${now.runner})`);
  else if (old.code.sources !== now.code.sources) {
    files = old.code.files && now.code.files ? changedNames(old.code.files, now.code.files) : '';
    parts.push(`code of ${now.kind}`);
  }
  if (old.code.package !== now.code.package) parts.push(`the package version (${old.code.package} → ${now.code.package})`);
  const inputs = changedNames(old.inputHashes, now.inputHashes);
  if (inputs) parts.push(`input ${inputs}`);
  if (!parts.length) return undefined;
  const what = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
  return `${what} changed since ${since}${files ? ` (${files})` : ''}`;
}

export interface CachedStep extends CacheEntry {
  key: string;
}

export class StepCache {
  constructor(private readonly store: ArtifactStore) {}

  private file(key: string): string {
    if (!/^[0-9a-f]{16,128}$/.test(key)) throw new Error(`invalid cache key ${JSON.stringify(key)}`);
    return join(this.store.cacheDir(), `${key}.json`);
  }

  /** The entry for key, or undefined when missing, unreadable, or any recorded output is gone or changed. */
  lookup(key: string): CachedStep | undefined {
    const file = this.file(key);
    if (!existsSync(file)) return undefined;
    let entry: CachedStep & { format?: number };
    try {
      entry = readJsonFile<CachedStep & { format?: number }>(file);
    } catch {
      return undefined;
    }
    if (entry.format !== CACHE_FORMAT || entry.key !== key || !entry.outputHashes) return undefined;
    for (const [p, h] of Object.entries(entry.outputHashes)) {
      try {
        if (!existsSync(p) || hashPath(p) !== h) return undefined;
      } catch {
        return undefined;
      }
    }
    const { format: _format, ...step } = entry;
    return step;
  }

  record(key: string, entry: CacheEntry): void {
    writeJsonAtomic(this.file(key), { format: CACHE_FORMAT, key, ...entry });
    if (entry.lineage && entry.components) {
      const last: LastEntry = { key, runId: entry.runId, stepId: entry.stepId, finishedAt: entry.finishedAt, components: entry.components };
      writeJsonAtomic(this.lastFile(entry.lineage), last);
    }
  }

  private lastFile(lineage: string): string {
    if (!/^[0-9a-f]{16,128}$/.test(lineage)) throw new Error(`invalid cache lineage ${JSON.stringify(lineage)}`);
    return join(this.store.cacheDir(), 'last', `${lineage}.json`);
  }

  /**
   * Why `key` missed, from the newest entry of the same kind and parameters: e.g. `code of
   * rl.grpo changed since run R (rl/grpo.ts)`, or that its outputs changed. Undefined when
   * no such entry was recorded (a step never run with these parameters).
   */
  explainMiss(key: string, lineage: string, now: KeyComponents): string | undefined {
    const file = this.lastFile(lineage);
    if (!existsSync(file)) return undefined;
    let last: LastEntry;
    try {
      last = readJsonFile<LastEntry>(file);
    } catch {
      return undefined;
    }
    if (!last?.components?.code || !last.components.inputHashes) return undefined;
    const since = `run ${last.runId}`;
    if (last.key === key) return `the outputs that step "${last.stepId}" of ${since} recorded changed or are gone`;
    return describeChange(last.components, now, since) ?? `the entry of ${since} was recorded under another key format`;
  }
}
