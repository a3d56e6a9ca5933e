/**
 * Loading and writing data files in HuatuoGPT-o1's formats (data/formats.ts).
 *
 * Reads a JSON array, an evaluation file (an object of source name → list of items) or
 * JSONL (one record a line). Every record is validated; each bad one is reported with the
 * file and its place (`file.jsonl:LINE` or `file.json: record [INDEX]`, `[source][INDEX]`
 * for evaluation files) and what is wrong. Policy `fail` stops with all problems listed
 * (up to a cap); policy `skip` drops bad records and counts them. Files are UTF-8: a byte that
 * is not stops the load with the file and line (whatever the policy), never a silent U+FFFD.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import { parseJsonText, writeFileAtomic, writeJsonAtomic } from '../common/fs.ts';
import { decodeUtf8, TextFileError } from '../common/text.ts';
import { UserError } from '../contract/errors.ts';
import { McqItem, SftItem, VerifiableItem } from './formats.ts';

export type BadRecordPolicy = 'fail' | 'skip';
export type DataFormat = 'mcq' | 'verifiable' | 'sft';

export interface LoadOptions {
  policy?: BadRecordPolicy;
  /** How many problems a `fail` message lists (the rest are counted). */
  maxListed?: number;
}

export interface LoadResult<T> {
  file: string;
  items: T[];
  /** Where each kept item came from, parallel to `items`. */
  where: string[];
  /** The evaluation source of each kept item (evaluation files only), parallel to `items`. */
  sources?: string[];
  skipped: number;
  /** Every problem found (all of them, not capped). */
  problems: string[];
}

/** Bad data in an input file: a user error (never retried), listing where and what. */
export class DataError extends UserError {
  constructor(readonly file: string, readonly problems: string[], maxListed: number) {
    const shown = problems.slice(0, maxListed);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    super(`${file}: ${problems.length} bad record(s):\n  ${shown.join('\n  ')}${more}`, {
      where: file,
      hint: 'fix the records listed, or set on_bad_record: skip to drop and count them',
    });
    this.name = 'DataError';
  }
}

interface Shapes {
  mcq: McqItem;
  verifiable: VerifiableItem;
  sft: SftItem;
}
const SCHEMAS: { [F in DataFormat]: z.ZodType<Shapes[F]> } = { mcq: McqItem, verifiable: VerifiableItem, sft: SftItem };
const EXTRA: { [F in DataFormat]?: (item: Shapes[F]) => string | undefined } = { mcq: mcqConsistency };

/** Loads a file of `format` records. */
export function loadItems<F extends DataFormat>(file: string, format: F, opts: LoadOptions = {}): LoadResult<Shapes[F]> {
  const schema = SCHEMAS[format] as z.ZodType<Shapes[F]>;
  const extra = EXTRA[format] as ((item: Shapes[F]) => string | undefined) | undefined;
  return loadWith(file, (v) => check(schema, v, extra), opts);
}

/** Loads an evaluation file (source name → MCQ items); a plain list of MCQ items is accepted as one source. */
export function loadEvalFile(file: string, opts: LoadOptions = {}): { sources: Record<string, McqItem[]>; skipped: number; problems: string[] } {
  const r = loadItems(file, 'mcq', opts);
  // A Map, then own properties: any source name (`constructor`, `__proto__`) is just a name.
  const sources = new Map<string, McqItem[]>();
  r.items.forEach((item, i) => {
    const name = r.sources?.[i] ?? 'default';
    (sources.get(name) ?? sources.set(name, []).get(name)!).push(item);
  });
  return { sources: Object.fromEntries(sources), skipped: r.skipped, problems: r.problems };
}

/** Writes items as a pretty JSON array, atomically. */
export function writeJsonArray(file: string, items: readonly unknown[]): void {
  writeJsonAtomic(file, items);
}

/** Writes items as JSONL (one compact record a line), atomically. */
export function writeJsonl(file: string, items: readonly unknown[]): void {
  writeFileAtomic(file, items.map((x) => JSON.stringify(x) + '\n').join(''));
}

type Checker<T> = (value: unknown) => { ok: true; value: T } | { ok: false; why: string };

function loadWith<T>(file: string, checkOne: Checker<T>, opts: LoadOptions): LoadResult<T> {
  const policy = opts.policy ?? 'fail';
  if (!existsSync(file)) throw new UserError(`${file}: file not found`, { where: file, hint: 'check the input path in the pipeline' });
  const records = file.endsWith('.jsonl') ? readJsonl(file) : readJsonRecords(file);
  const out: LoadResult<T> = { file, items: [], where: [], skipped: 0, problems: [] };
  if (records.some((r) => r.source !== undefined)) out.sources = [];
  for (const r of records) {
    const res = r.parseError ? { ok: false as const, why: r.parseError } : checkOne(r.value);
    if (res.ok) {
      out.items.push(res.value);
      out.where.push(r.where);
      if (out.sources) out.sources.push(r.source ?? 'default');
    } else {
      out.problems.push(`${r.where}: ${res.why}`);
      out.skipped++;
    }
  }
  if (policy === 'fail' && out.problems.length > 0) throw new DataError(file, out.problems, opts.maxListed ?? 20);
  return out;
}

interface RawRecord {
  where: string;
  value?: unknown;
  parseError?: string;
  source?: string;
}

/** The file's text, strictly UTF-8: a byte that is not is an error naming the line, not a silent U+FFFD. */
function readUtf8(file: string): string {
  try {
    return decodeUtf8(readFileSync(file));
  } catch (err) {
    if (!(err instanceof TextFileError)) throw err;
    throw new UserError(`${file}:${err.line}: ${err.message}`, {
      where: `${file}:${err.line}`,
      hint: 'data files are UTF-8: convert the file (e.g. iconv -f latin1 -t utf-8 FILE > NEW) or fix that line',
    });
  }
}

function readJsonl(file: string): RawRecord[] {
  const lines = readUtf8(file).split('\n');
  const out: RawRecord[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file}:${i + 1}`;
    try {
      out.push({ where, value: JSON.parse(line) });
    } catch (err) {
      out.push({ where, parseError: `invalid JSON (${(err as Error).message})` });
    }
  });
  return out;
}

function readJsonRecords(file: string): RawRecord[] {
  let data: unknown;
  try {
    data = parseJsonText(readUtf8(file), file);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError((err as Error).message, { where: file, hint: 'a .json file must hold one JSON value; use .jsonl for one record per line' });
  }
  if (Array.isArray(data)) return data.map((value, i) => ({ where: `${file}: record [${i}]`, value }));
  if (data && typeof data === 'object' && Object.values(data).every(Array.isArray)) {
    return Object.entries(data as Record<string, unknown[]>).flatMap(([source, list]) =>
      list.map((value, i) => ({ where: `${file}: [${JSON.stringify(source)}][${i}]`, value, source })));
  }
  throw new UserError(`${file}: expected a JSON array of records, or an object of source name → list of records`, {
    where: file,
    hint: 'wrap the records in [ ... ], or use JSONL (.jsonl) with one record per line',
  });
}

function check<T>(schema: z.ZodType<T>, value: unknown, extra?: (v: T) => string | undefined): ReturnType<Checker<T>> {
  const r = schema.safeParse(value);
  if (!r.success) {
    const why = r.error.issues.map((i) => (i.path.length ? `field ${i.path.map((p) => JSON.stringify(p)).join('.')}: ` : '') + i.message).join('; ');
    return { ok: false, why };
  }
  const more = extra?.(r.data);
  return more ? { ok: false, why: more } : { ok: true, value: r.data };
}

function mcqConsistency(item: McqItem): string | undefined {
  const keys = Object.keys(item.options);
  if (keys.length < 2) return `field "options": needs at least two options, has ${keys.length}`;
  if (!Object.hasOwn(item.options, item.answer_idx)) return `field "answer_idx": "${item.answer_idx}" is not one of the option letters (${keys.join(', ')})`;
  return undefined;
}
