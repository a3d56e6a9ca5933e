/**
 * The results file: one JSON line per evaluated item, appended as answers arrive, so
 * an interrupted evaluation resumes where it stopped. A torn last line (the process
 * died mid-write) is dropped on reading and the file rewritten without it. An item the
 * server refused (prompt too long for the context, or another 4xx about that request) has a
 * row too, with `error`: it is recorded once, like an answer, and not asked again on resume.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../common/fs.ts';
import { UserError } from '../contract/errors.ts';

export interface ResultRow {
  source: string;
  /** `${source}/${index}`: the item's place in the evaluation file. */
  id: string;
  index: number;
  /** What was sent: the prompt, rendered through the chat template for the completions API. */
  prompt: string;
  /** The output post-processed (`</s>` and one leading space removed). */
  output: string;
  first: string | null;
  last: string | null;
  rule: string | null;
  gold: string;
  correct_first: boolean;
  correct_last: boolean;
  /** Under the report's policy (max: the last answer's; the better policy is chosen per source). */
  correct: boolean;
  /** The scorer that extracted first and last (absent in rows written before scorers had names: rules). */
  scorer?: string;
  finish_reason?: string;
  /**
   * Prompt tokens as the server counted them. For a failed item, as its error message said
   * (a lower bound when the server stopped counting past the context), else 0.
   */
  prompt_tokens: number;
  completion_tokens: number;
  seed: number;
  /**
   * Set when the item failed: the server refused its request, so there is no output and the
   * item counts as not answered. `prompt_too_long`: the prompt does not fit the model's
   * context; `rejected`: another refusal about this request (error_message says which).
   */
  error?: ItemError;
  error_message?: string;
  /** The model's context in tokens, when the server said it (prompt_too_long). */
  context_length?: number;
}

export type ItemError = 'prompt_too_long' | 'rejected';

const REQUIRED: (keyof ResultRow)[] = ['source', 'id', 'prompt', 'output', 'gold', 'correct_first', 'correct_last'];

/** Reads the rows already written; repairs a torn tail. Throws (naming the line) on damage elsewhere. */
export function readResults(file: string): ResultRow[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const rows: ResultRow[] = [];
  let torn = false;
  let lastLine = lines.length - 1;
  while (lastLine >= 0 && !lines[lastLine].trim()) lastLine--;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    const isLast = i === lastLine;
    let row: ResultRow;
    try {
      row = JSON.parse(line) as ResultRow;
      const missing = REQUIRED.filter((k) => !(k in row));
      if (missing.length) throw new Error(`missing ${missing.join(', ')}`);
    } catch (err) {
      if (isLast) {
        torn = true;
        continue;
      }
      throw new UserError(`${file}:${i + 1}: not a result row (${(err as Error).message}); delete the line or the file to evaluate those items again`);
    }
    rows.push(row);
  }
  if (torn || (text.length > 0 && !text.endsWith('\n'))) writeFileAtomic(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
  return rows;
}

/** Replaces the file's rows (atomically), e.g. after scoring them again. */
export function rewriteResults(file: string, rows: ResultRow[]): void {
  writeFileAtomic(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
}

export function appendResult(file: string, row: ResultRow): void {
  appendFileSync(file, JSON.stringify(row) + '\n');
}
