/** Content hashes: canonical JSON (sorted keys) and files or folders on disk. */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value as object).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hashJson(value: unknown): string {
  return sha256(canonicalJson(value));
}

/** sha256 of a file, or of a folder (relative paths and contents of all files, sorted). */
export function hashPath(path: string): string {
  const st = statSync(path);
  if (st.isFile()) return sha256(readFileSync(path));
  const h = createHash('sha256');
  const walk = (dir: string): string[] =>
    readdirSync(dir).sort().flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? walk(p) : [p];
    });
  for (const file of walk(path)) {
    h.update(relative(path, file) + '\0');
    h.update(sha256(readFileSync(file)) + '\n');
  }
  return h.digest('hex');
}
