/**
 * Tolerant JSON extraction from a model's reply.
 *
 * Repairs, in order: a ```json code fence, prose before or after the value, trailing
 * commas, single-quoted strings and keys (when the single quote is clearly a string
 * delimiter, not an apostrophe inside a word), Python's True/False/None, and "smart"
 * double quotes used as delimiters.
 *
 * It cannot repair: a value cut off before its closing bracket (a truncated reply),
 * missing commas between items, unquoted keys, comments, or unescaped double quotes
 * inside a string. Those throw JsonExtractError saying what was tried.
 */

export class JsonExtractError extends Error {
  constructor(message: string, readonly text: string) {
    super(message);
    this.name = 'JsonExtractError';
  }
}

/** Extracts the first JSON object or array from `text`, repairing common slips. */
export function extractJson<T = unknown>(text: string): T {
  const candidates: string[] = [];
  for (const m of text.matchAll(/```(?:json|JSON)?[ \t]*\n?([\s\S]*?)```/g)) candidates.push(m[1]);
  candidates.push(text);
  let lastError = 'no "{" or "[" found in the reply';
  for (const candidate of candidates) {
    const span = findValueSpan(candidate);
    if (!span.ok) {
      lastError = span.reason;
      continue;
    }
    for (const attempt of repairs(span.text)) {
      try {
        return JSON.parse(attempt) as T;
      } catch (err) {
        lastError = `invalid JSON after repairs (${(err as Error).message})`;
      }
    }
  }
  const preview = text.length > 200 ? text.slice(0, 200) + '...' : text;
  throw new JsonExtractError(`could not extract JSON from the reply: ${lastError}; reply starts: ${JSON.stringify(preview)}`, text);
}

/** The text of the first balanced {...} or [...] (string-aware, both quote styles). */
function findValueSpan(text: string): { ok: true; text: string } | { ok: false; reason: string } {
  const start = text.search(/[{[]/);
  if (start < 0) return { ok: false, reason: 'no "{" or "[" found in the reply' };
  const stack: string[] = [];
  let quote: string | null = null;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote || (quote === '"' && c === '\u201d')) quote = null;
      continue;
    }
    if (c === '"' || c === '\u201c') quote = '"';
    else if (c === "'" && isStringQuote(text, i)) quote = "'";
    else if (c === '{' || c === '[') stack.push(c === '{' ? '}' : ']');
    else if (c === '}' || c === ']') {
      if (stack.pop() !== c) return { ok: false, reason: `mismatched "${c}" at offset ${i}` };
      if (stack.length === 0) return { ok: true, text: text.slice(start, i + 1) };
    }
  }
  return { ok: false, reason: 'the JSON value is not closed (truncated reply?)' };
}

/** A single quote opens a string when it follows a structural character (not a letter: "don't"). */
function isStringQuote(text: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && /\s/.test(text[j])) j--;
  return j < 0 || '{[,:'.includes(text[j]);
}

function* repairs(text: string): Generator<string> {
  yield text;
  let t = text.replace(/[\u201c\u201d]/g, '"');
  t = removeTrailingCommas(t);
  yield t;
  t = singleToDoubleQuotes(t);
  yield t;
  yield replaceOutsideStrings(t, /\b(True|False|None)\b/g, (w) => ({ True: 'true', False: 'false', None: 'null' })[w] ?? w);
}

function removeTrailingCommas(text: string): string {
  return replaceOutsideStrings(text, /,(\s*[}\]])/g, (_m, tail: string) => tail);
}

/** Rewrites 'single-quoted' strings as "double-quoted" ones, escaping inner double quotes. */
function singleToDoubleQuotes(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(text, i, '"');
      out += text.slice(i, end);
      i = end - 1;
    } else if (c === "'" && isStringQuote(text, i)) {
      const end = skipString(text, i, "'");
      const inner = text.slice(i + 1, end - 1).replace(/\\'/g, "'").replace(/(?<!\\)"/g, '\\"');
      out += `"${inner}"`;
      i = end - 1;
    } else out += c;
  }
  return out;
}

/** Index just past the string starting at `i` with `quote`. */
function skipString(text: string, i: number, quote: string): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === quote) return j + 1;
  }
  return text.length;
}

/** Applies a regex replacement only to the parts of `text` outside double-quoted strings. */
function replaceOutsideStrings(text: string, re: RegExp, fn: (m: string, ...groups: string[]) => string): string {
  let out = '';
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') {
      out += text.slice(last, i).replace(re, fn as (m: string) => string);
      const end = skipString(text, i, '"');
      out += text.slice(i, end);
      last = end;
      i = end - 1;
    }
  }
  return out + text.slice(last).replace(re, fn as (m: string) => string);
}
