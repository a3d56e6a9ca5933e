/**
 * A YAML source file with positions: finds the node at a path and turns it into file:line:col.
 * Files are read strictly (common/text.ts): regular files only, at most MAX_SOURCE_BYTES, UTF-8.
 */
import { Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Node, type Pair, type YAMLMap } from 'yaml';
import { readTextFile, type TextFileError } from '../common/text.ts';
import type { Diagnostic } from './diagnostics.ts';

/** Largest pipeline or params file read: they are small (data belongs in the files steps read). */
export const MAX_SOURCE_BYTES = 1024 * 1024;
/** How many times aliases (`*name`) may copy anchored values in all (a guard against alias bombs). */
export const MAX_ALIAS_COPIES = 100;

export type Path = (string | number)[];

export interface SourceFile {
  /** As shown in messages (relative to the working folder when inside it). */
  file: string;
  absPath: string;
  text: string;
  doc: Document;
  lines: LineCounter;
}

export function parseSource(text: string, file: string, absPath = file): { src: SourceFile; errors: Diagnostic[] } {
  const lines = new LineCounter();
  let doc: Document;
  try {
    // Duplicate keys are found by keysProblem (one Set per mapping), not by the parser (which compares every pair).
    doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false, merge: true });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    const src: SourceFile = { file, absPath, text, doc: new Document(null), lines };
    return { src, errors: [{ file, line: 1, col: 1, message: 'YAML: nested too deeply to read; write a flatter file' }] };
  }
  const src: SourceFile = { file, absPath, text, doc, lines };
  // YAML errors cascade: the first one is the one to fix.
  const first = [...doc.errors, ...doc.warnings][0];
  const keys = keysProblem(doc);
  const yamlAt = first ? yamlErrorOffset(text, first.code, first.message, first.pos[0]) : Infinity;
  if (keys && keys.offset < yamlAt) return { src, errors: [diagnosticAtOffset(src, keys.offset, keys.message)] };
  if (!first) return { src, errors: [] };
  const d = diagnosticAtOffset(src, yamlAt, `YAML: ${yamlMessage(first.message)}`);
  if (expressionInFlow(d.lineText ?? '')) d.message += ' (inside { } or [ ], put quotes around expressions: "${{ ... }}")';
  return { src, errors: [d] };
}

/** Whether `${{` follows a `{` or `[` on the line (linear: long lines are read once). */
function expressionInFlow(line: string): boolean {
  const open = line.search(/[{[]/);
  return open >= 0 && line.indexOf('${{', open + 1) > open;
}

/** The first repeated key of a mapping, or `__proto__` used as a key; linear in the size of the document. */
function keysProblem(doc: Document): { offset: number; message: string } | undefined {
  let found: { offset: number; message: string } | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = pair.key;
        if (!isScalar(key)) continue;
        const at = key.range?.[0] ?? 0;
        if (key.value === '__proto__') {
          found = { offset: at, message: "YAML: the key '__proto__' is not allowed: choose another name" };
          return visit.BREAK;
        }
        if (seen.has(key.value)) {
          found = { offset: at, message: 'YAML: Map keys must be unique' };
          return visit.BREAK;
        }
        seen.add(key.value);
      }
      return undefined;
    },
  });
  return found;
}

/** What is wrong with a file that could not be read, and what to do, for a `what` ('pipeline file'). */
export function fileProblem(err: TextFileError, what: string): string {
  switch (err.reason) {
    case 'not-found':
      return 'file not found';
    case 'not-a-file':
      return `it is ${err.message}; give the path of a ${what} (YAML text)`;
    case 'too-big':
      return `it is ${err.message} for a ${what}: keep data in files that steps read, and split a long pipeline with extends:`;
    case 'not-utf8':
      return `${err.message}: a ${what} is UTF-8 text; save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE > NEW)`;
    default:
      return err.message;
  }
}

/**
 * Reads a pipeline or params file; throws common/text.ts's TextFileError when it is not a regular
 * file, is over MAX_SOURCE_BYTES, or is not UTF-8.
 */
export function readSource(absPath: string, file: string): { src: SourceFile; errors: Diagnostic[] } {
  return parseSource(readTextFile(absPath, MAX_SOURCE_BYTES), file, absPath);
}

/**
 * The document as plain JavaScript values; aliases that would copy anchored values more than
 * MAX_ALIAS_COPIES times in all (an alias bomb) are an error at the first alias.
 */
export function sourceValue(src: SourceFile): { value: unknown; error?: undefined } | { value?: undefined; error: Diagnostic } {
  try {
    return { value: src.doc.toJS({ maxAliasCount: MAX_ALIAS_COPIES }) as unknown };
  } catch (err) {
    if (!(err instanceof ReferenceError) && !(err instanceof RangeError)) throw err;
    let alias: Node | undefined;
    visit(src.doc, {
      Alias(_, node) {
        alias = node;
        return visit.BREAK;
      },
    });
    const name = alias && isAlias(alias) ? ` (*${alias.source} and others)` : '';
    const message = `YAML: aliases${name} copy anchored values more than ${MAX_ALIAS_COPIES} times in all: write the values out, or use fewer aliases`;
    return { error: diagnosticAtOffset(src, alias?.range?.[0] ?? 0, message) };
  }
}

/** An unclosed quote is reported where the text ends; point at the opening quote instead. */
function yamlErrorOffset(text: string, code: string, message: string, pos: number): number {
  if (code === 'MISSING_CHAR' && /quote/.test(message)) {
    const open = text.lastIndexOf(message.includes('"quote') ? '"' : "'", pos - 1);
    if (open >= 0) return open;
  }
  return pos;
}

function yamlMessage(m: string): string {
  return m.split('\n')[0].replace(/ at line \d+, column \d+.*$/, '');
}

export function diagnosticAtOffset(src: SourceFile, offset: number, message: string): Diagnostic {
  const { line, col } = src.lines.linePos(Math.min(Math.max(0, offset), src.text.length));
  const start = src.lines.lineStarts[line - 1] ?? 0;
  const end = src.text.indexOf('\n', start);
  const lineText = src.text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '');
  return { file: src.file, line, col, message, lineText };
}

interface Found {
  node: Node | null;
  /** The key node, when the last segment was a mapping key. */
  key: Node | null;
  /** Whether the whole path exists. */
  exact: boolean;
}

const pairIndex = new WeakMap<YAMLMap, Map<unknown, Pair>>();

/** A mapping's pairs by key (the first of equal keys), built once per mapping: lookups stay linear overall. */
function pairsOf(map: YAMLMap): Map<unknown, Pair> {
  let index = pairIndex.get(map);
  if (!index) {
    index = new Map();
    for (const p of map.items) {
      if (!isPair(p)) continue;
      const k = isScalar(p.key) ? p.key.value : p.key;
      if (!index.has(k)) index.set(k, p as Pair);
    }
    pairIndex.set(map, index);
  }
  return index;
}

/** Walks a path of keys and indexes down the document, as far as it exists. */
export function findNode(src: SourceFile, path: Path): Found {
  let node = src.doc.contents as Node | null;
  let key: Node | null = null;
  for (const seg of path) {
    if (isAlias(node)) node = (node.resolve(src.doc) as Node | undefined) ?? node;
    if (isMap(node)) {
      const pair = pairsOf(node).get(seg);
      if (!pair) return { node, key, exact: false };
      key = pair.key as Node;
      node = (pair.value as Node | null) ?? null;
      if (node === null) return { node: key, key, exact: true };
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
      node = node.items[seg] as Node;
      key = null;
    } else {
      return { node, key, exact: false };
    }
  }
  return { node, key, exact: true };
}

/** Offset of a path's node; with `onKey`, of its key (e.g. for unknown keys). */
export function offsetOf(src: SourceFile, path: Path, onKey = false): number {
  const f = findNode(src, path);
  const n = (onKey || !f.exact) && f.key ? f.key : f.node;
  return n?.range?.[0] ?? 0;
}

export function diagnosticAt(src: SourceFile, path: Path, message: string, onKey = false): Diagnostic {
  return diagnosticAtOffset(src, offsetOf(src, path, onKey), message);
}

/**
 * Offset of a character inside a string value: exact when the value appears verbatim in the source
 * (plain and simply quoted scalars), else the start of the node.
 */
export function offsetInString(src: SourceFile, path: Path, value: string, index: number): number {
  const f = findNode(src, path);
  const range = f.node?.range;
  if (!range) return 0;
  const raw = src.text.slice(range[0], range[1]);
  const at = raw.indexOf(value);
  return at >= 0 ? range[0] + at + index : range[0];
}
