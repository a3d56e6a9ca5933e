/**
 * Runs a data stage over items with the item cache as its checkpoint: finished items
 * (from this or an earlier attempt) are taken from the cache, the rest run with bounded
 * concurrency, each recorded durably as it finishes. Items whose server calls failed for
 * good stay unfinished; the stage then fails (retryable) and a retry runs only those.
 */
import { join } from 'node:path';
import { hashJson } from '../common/hash.ts';
import type { JobContext } from '../contract/job.ts';
import { ItemCache } from './item-cache.ts';
import { forEachLimited } from './pool.ts';

export const CACHE_FILE = 'items.cache.jsonl';

/** Stable ids: a hash of the item's content, with a counter for repeated items (GPQA repeats its questions). */
export function itemIds(items: readonly unknown[]): string[] {
  const seen = new Map<string, number>();
  return items.map((item) => {
    const h = hashJson(item).slice(0, 16);
    const n = seen.get(h) ?? 0;
    seen.set(h, n + 1);
    return n === 0 ? h : `${h}#${n}`;
  });
}

export interface RunItemsResult<R> {
  /** Results in input order (every item finished). */
  results: R[];
  fromCache: number;
}

export async function runItems<T, R>(
  ctx: Pick<JobContext, 'outDir' | 'resumeFrom' | 'signal' | 'progress' | 'checkpoint' | 'log'>,
  items: readonly T[],
  opts: { stage: string; concurrency: number; unit: string },
  fn: (item: T, id: string) => Promise<R>,
): Promise<RunItemsResult<R>> {
  const cachePath = join(ctx.outDir, CACHE_FILE);
  const cache = new ItemCache<R>(cachePath, opts.stage, ctx.resumeFrom);
  if (cache.tornLines > 0) ctx.log(`item cache: ignored ${cache.tornLines} torn line(s) from an interrupted write`, 'warn');
  const ids = itemIds(items);
  const fromCache = ids.filter((id) => cache.has(id)).length;
  if (fromCache > 0) ctx.log(`resuming: ${fromCache} of ${items.length} ${opts.unit} already done`);
  let done = fromCache;
  ctx.progress(done, items.length, undefined, opts.unit);
  const unfinished: string[] = [];
  const todo = items.map((item, i) => ({ item, id: ids[i] })).filter((x) => !cache.has(x.id));
  await forEachLimited(todo, opts.concurrency, async ({ item, id }) => {
    try {
      const result = await fn(item, id);
      cache.put(id, result);
      done++;
      ctx.checkpoint(cachePath, done);
      ctx.progress(done, items.length, undefined, opts.unit);
    } catch (err) {
      if (ctx.signal.aborted) return;
      unfinished.push(`${id}: ${(err as Error).message}`);
    }
  }, ctx.signal);
  if (ctx.signal.aborted) throw new Error(`stopped with ${items.length - done} ${opts.unit} unfinished; finished ones are kept in ${cachePath}`);
  if (unfinished.length > 0) {
    throw new Error(`${unfinished.length} ${opts.unit} unfinished (a retry runs only these): ${unfinished.slice(0, 5).join('; ')}${unfinished.length > 5 ? ' ...' : ''}`);
  }
  return { results: ids.map((id) => cache.get(id) as R), fromCache };
}
