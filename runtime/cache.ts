/**
 * The step cache: a successful step's outputs, keyed by a hash of what determines
 * them (the step's kind, its resolved parameters, and the content of every input file
 * or folder those parameters name). Where the step is written in the YAML, its id, and
 * its retry or timeout settings do not change its result, so they are not in the key. A hit is only trusted when every
 * recorded output still exists with the content hash it had when it was recorded.
 *
 * Entries live in <store>/cache/<key>.json, written atomically.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { readJsonFile, writeJsonAtomic } from '../common/fs.ts';
import { hashJson, hashPath } from '../common/hash.ts';
import type { ArtifactStore } from './store.ts';

const CACHE_FORMAT = 2;

export interface CacheKeyInput {
  kind: string;
  /** The resolved `with` (no expressions left). */
  params: unknown;
  /** Path → content hash of every input, from inputHashesFor(params). */
  inputHashes: Record<string, string>;
}

export function cacheKey(input: CacheKeyInput): string {
  return hashJson({
    format: CACHE_FORMAT,
    kind: input.kind,
    params: input.params ?? null,
    inputHashes: input.inputHashes,
  });
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
 * the values (relative paths resolve against baseDir). Keys are the strings as written.
 */
export function inputHashesFor(params: unknown, baseDir: string = process.cwd()): Record<string, string> {
  const hashes: Record<string, string> = {};
  for (const s of strings(params)) {
    if (s in hashes || !looksLikePath(s)) continue;
    const p = isAbsolute(s) ? s : resolve(baseDir, s);
    if (!existsSync(p)) continue;
    try {
      hashes[s] = hashPath(p);
    } catch {
      /* unreadable (permissions, vanished mid-walk): not an input we can vouch for */
    }
  }
  return hashes;
}

/** Same rule for a step's outputs: what lookup() re-checks before trusting an entry. */
export const outputHashesFor = inputHashesFor;

export interface CacheEntry {
  runId: string;
  stepId: string;
  outputs: Record<string, unknown>;
  /** Absolute path (or path as recorded) → content hash, from outputHashesFor(outputs). */
  outputHashes: Record<string, string>;
  finishedAt: string;
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
  }
}
