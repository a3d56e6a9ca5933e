/** A YAML source file with positions: finds the node at a path and turns it into file:line:col. */
import { readFileSync } from 'node:fs';
import { Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { Diagnostic } from './diagnostics.ts';

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
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const src: SourceFile = { file, absPath, text, doc, lines };
  // YAML errors cascade: the first one is the one to fix.
  const first = [...doc.errors, ...doc.warnings][0];
  if (!first) return { src, errors: [] };
  const d = diagnosticAtOffset(src, yamlErrorOffset(text, first.code, first.message, first.pos[0]), `YAML: ${yamlMessage(first.message)}`);
  if (/[{[].*\$\{\{/.test(d.lineText ?? '')) d.message += ' (inside { } or [ ], put quotes around expressions: "${{ ... }}")';
  return { src, errors: [d] };
}

export function readSource(absPath: string, file: string): { src: SourceFile; errors: Diagnostic[] } {
  return parseSource(readFileSync(absPath, 'utf8'), file, absPath);
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
  const lineText = src.text.split('\n')[line - 1]?.replace(/\r$/, '') ?? '';
  return { file: src.file, line, col, message, lineText };
}

interface Found {
  node: Node | null;
  /** The key node, when the last segment was a mapping key. */
  key: Node | null;
  /** Whether the whole path exists. */
  exact: boolean;
}

/** Walks a path of keys and indexes down the document, as far as it exists. */
export function findNode(src: SourceFile, path: Path): Found {
  let node = src.doc.contents as Node | null;
  let key: Node | null = null;
  for (const seg of path) {
    if (isAlias(node)) node = (node.resolve(src.doc) as Node | undefined) ?? node;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? p.key.value : p.key) === seg);
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
