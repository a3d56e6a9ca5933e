/**
 * Training text for the tokenizer, from the project's data files: .json (any of HuatuoGPT-o1's
 * formats — every string value is taken), .jsonl (one JSON value per line), or plain text.
 * SFT items also contribute their target layout (`## Thinking ... ## Final Response ...`),
 * the text the model will be trained to write.
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { readJsonFile } from '../common/fs.ts';
import { sftTarget } from './formats.ts';

function collectStrings(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    if (value.length > 0) out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectStrings(v, out);
  } else if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof obj.Complex_CoT === 'string' && typeof obj.Response === 'string') {
      out.push(sftTarget({ Complex_CoT: obj.Complex_CoT, Response: obj.Response }));
    }
    for (const v of Object.values(obj)) collectStrings(v, out);
  }
}

/** Reads one file into a list of texts; errors name the file (and line for .jsonl). */
export function readCorpusFile(path: string): string[] {
  if (!existsSync(path)) throw new Error(`${path}: file not found — pass existing files with --data`);
  if (!statSync(path).isFile()) throw new Error(`${path}: not a file — pass files, not folders, with --data`);
  const ext = extname(path).toLowerCase();
  const out: string[] = [];
  if (ext === '.json') {
    collectStrings(readJsonFile(path), out);
  } else if (ext === '.jsonl') {
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new Error(`${path}:${i + 1}: invalid JSON line (${(err as Error).message}) — fix or remove that line`);
      }
      collectStrings(value, out);
    });
  } else {
    const text = readFileSync(path, 'utf8');
    if (text.length > 0) out.push(text);
  }
  return out;
}

export function readCorpus(paths: string[]): string[] {
  if (paths.length === 0) throw new Error('no training data — pass one or more files with --data');
  return paths.flatMap(readCorpusFile);
}
