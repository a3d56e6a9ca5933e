/**
 * Finding the newest valid checkpoint of a step, for resuming after a crash.
 *
 * A checkpoint is a file or a folder matched by a glob relative to the step folder.
 * It counts as VALID (complete) only when:
 *   - no part of its name looks temporary: no path segment (below the step folder)
 *     starts with '.', and the name does not end in .tmp, .temp, .part, .partial,
 *     .incomplete or '~' (writers that write to such a name and rename when done are
 *     never picked up half-written);
 *   - a file is non-empty;
 *   - a folder holds at least one non-empty file and nothing with a temporary name
 *     anywhere inside it (a folder written in place and interrupted usually leaves one).
 * The NEWEST valid one wins: ordered by the step number in its name (the last integer
 * of its path below the step folder, e.g. checkpoint-1500 → 1500) when every candidate
 * has one, else by modification time.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import fg from 'fast-glob';

export interface FoundCheckpoint {
  path: string;
  step?: number;
  mtimeMs: number;
}

const TEMP_NAME = /(^\.)|(\.(tmp|temp|part|partial|incomplete)$)|(~$)/i;

export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

function folderComplete(dir: string): boolean {
  let nonEmptyFile = false;
  const walk = (d: string): boolean => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (isTempName(e.name)) return false;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!walk(p)) return false;
      } else if (e.isFile() && statSync(p).size > 0) nonEmptyFile = true;
    }
    return true;
  };
  return walk(dir) && nonEmptyFile;
}

/** Whether path is a complete checkpoint by the rule above (base: the folder its name is judged below). */
export function isValidCheckpoint(path: string, base?: string): boolean {
  try {
    const rel = base ? relative(base, path) : basename(path);
    const segments = rel.startsWith('..') || isAbsolute(rel) ? [basename(path)] : rel.split(sep);
    if (segments.some(isTempName)) return false;
    const st = statSync(path);
    if (st.isFile()) return st.size > 0;
    if (st.isDirectory()) return folderComplete(path);
    return false;
  } catch {
    return false; // vanished or unreadable while we looked
  }
}

/** The last integer in a path (below base), e.g. "ckpt/step-000120.json" → 120. */
export function stepNumber(path: string, base?: string): number | undefined {
  const rel = base ? relative(base, path) : basename(path);
  const m = rel.match(/\d+/g);
  return m ? Number(m[m.length - 1]) : undefined;
}

function describe(path: string, base?: string): FoundCheckpoint {
  return { path, step: stepNumber(path, base), mtimeMs: statSync(path).mtimeMs };
}

/** Newest last. */
function sortCheckpoints(list: FoundCheckpoint[]): FoundCheckpoint[] {
  const byStep = list.every((c) => c.step !== undefined);
  return list.sort((a, b) => (byStep ? a.step! - b.step! : 0) || a.mtimeMs - b.mtimeMs);
}

/** All valid checkpoints matching the glob (relative to stepDir), oldest first. */
export function findCheckpoints(stepDir: string, pattern: string): FoundCheckpoint[] {
  const paths = fg.sync(pattern, { cwd: stepDir, absolute: true, onlyFiles: false, dot: false, followSymbolicLinks: false });
  const out: FoundCheckpoint[] = [];
  for (const p of paths) {
    if (!isValidCheckpoint(p, stepDir)) continue;
    try {
      out.push(describe(p, stepDir));
    } catch {
      /* vanished */
    }
  }
  return sortCheckpoints(out);
}

/**
 * The checkpoint to resume from: the newest of `resumeFrom` (when it still exists and
 * is valid) and those the glob finds in the step folder. Undefined when there is none.
 */
export function newestCheckpoint(stepDir: string, pattern: string | undefined, resumeFrom?: string): FoundCheckpoint | undefined {
  const list = pattern ? findCheckpoints(stepDir, pattern) : [];
  if (resumeFrom) {
    const p = resolve(stepDir, resumeFrom);
    if (existsSync(p) && isValidCheckpoint(p) && !list.some((c) => c.path === p)) {
      const inside = !relative(stepDir, p).startsWith('..');
      list.push(describe(p, inside ? stepDir : undefined));
    }
  }
  return sortCheckpoints(list).at(-1);
}
