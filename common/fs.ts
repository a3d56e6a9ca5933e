/** Small file helpers shared by every part: atomic writes and JSON reads with clear errors. */
import { mkdirSync, readFileSync, renameSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes a file atomically: a temp file in the same folder, then rename. Readers never see a partial file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function writeJsonAtomic(path: string, value: unknown, pretty = true): void {
  writeFileAtomic(path, JSON.stringify(value, null, pretty ? 2 : undefined) + '\n');
}

/** Reads and parses a JSON file; errors name the file and, for syntax errors, the line and column. */
export function readJsonFile<T = unknown>(path: string): T {
  if (!existsSync(path)) throw new Error(`${path}: file not found`);
  return parseJsonText<T>(readFileSync(path, 'utf8'), path);
}

/** Parses JSON text read from `path`; a syntax error names the file, line and column. */
export function parseJsonText<T = unknown>(text: string, path: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    const msg = (err as Error).message;
    const m = /position (\d+)/.exec(msg);
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      throw new Error(`${path}:${line}:${col}: invalid JSON (${msg})`);
    }
    throw new Error(`${path}: invalid JSON (${msg})`);
  }
}
