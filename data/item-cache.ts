/**
 * A per-item result cache on disk: one append-only JSONL file, one line per finished
 * item, keyed by the item's id and the stage hash (a hash of everything that shapes the
 * result: method, prompts, model, seed...). It is the data jobs' checkpoint: after a
 * crash or a retry, only items without a line under the current stage hash run again.
 *
 * A crash in the middle of an append leaves a torn last line; it is ignored on load and
 * the item simply runs again.
 */
import { appendFileSync, existsSync, mkdirSync, openSync, closeSync, fsyncSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

interface CacheLine<T> {
  id: string;
  stage: string;
  value: T;
}

export class ItemCache<T = unknown> {
  private entries = new Map<string, T>();
  /** Lines that could not be parsed when loading (a torn last line after a crash). */
  readonly tornLines: number;

  /**
   * Opens (or creates) the cache at `path`. `seedFrom` is an older cache file (e.g. the
   * checkpoint handed to a retried job) whose entries are merged in and written forward.
   */
  constructor(readonly path: string, readonly stage: string, seedFrom?: string) {
    mkdirSync(dirname(path), { recursive: true });
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    // A torn last line must not glue itself to the next append: start on a fresh line.
    if (text.length > 0 && !text.endsWith('\n')) appendFileSync(path, '\n');
    let torn = this.load(text, false);
    if (seedFrom && seedFrom !== path && existsSync(seedFrom)) torn += this.load(readFileSync(seedFrom, 'utf8'), true);
    this.tornLines = torn;
  }

  get size(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get(id: string): T | undefined {
    return this.entries.get(id);
  }

  /** Records a finished item durably (append + fsync) before returning. */
  put(id: string, value: T): void {
    const line: CacheLine<T> = { id, stage: this.stage, value };
    const fd = openSync(this.path, 'a');
    try {
      appendFileSync(fd, JSON.stringify(line) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.entries.set(id, value);
  }

  /** Takes the lines of a cache file's text; returns how many could not be parsed. */
  private load(fileText: string, copyForward: boolean): number {
    let torn = 0;
    for (const text of fileText.split('\n')) {
      if (!text.trim()) continue;
      let line: CacheLine<T>;
      try {
        line = JSON.parse(text) as CacheLine<T>;
      } catch {
        torn++;
        continue;
      }
      if (line.stage !== this.stage || typeof line.id !== 'string' || this.entries.has(line.id)) continue;
      if (copyForward) this.put(line.id, line.value);
      else this.entries.set(line.id, line.value);
    }
    return torn;
  }
}
