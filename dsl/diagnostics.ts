/** Compile errors that point at a place: `FILE:LINE:COL: message`, the source line, a caret. */

export interface Diagnostic {
  /** File as shown to the user, or a pseudo-source like "--set". */
  file: string;
  /** 1-based; 0 when the error has no position (e.g. a --set argument). */
  line: number;
  col: number;
  message: string;
  /** The source line the error is on, for the excerpt. */
  lineText?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  if (d.line <= 0) return `${d.file}: ${d.message}`;
  const head = `${d.file}:${d.line}:${d.col}: ${d.message}`;
  if (d.lineText === undefined) return head;
  const num = String(d.line);
  const gutter = ' '.repeat(num.length);
  const text = d.lineText.replace(/\t/g, ' ');
  return `${head}\n  ${num} | ${text}\n  ${gutter} | ${' '.repeat(Math.max(0, d.col - 1))}^`;
}

export function formatDiagnostics(ds: Diagnostic[]): string {
  const n = ds.length;
  return `${ds.map(formatDiagnostic).join('\n\n')}\n\n${n} error${n === 1 ? '' : 's'}`;
}

/** Sorted by file, then position; duplicates removed. */
export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return [...ds]
    .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col))
    .filter((d) => {
      const key = `${d.file}:${d.line}:${d.col}:${d.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}

/** Thrown by the compiler when the pipeline has errors; the CLI prints `format()` and exits 1. */
export class CompileError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    const sorted = sortDiagnostics(diagnostics);
    super(sorted.map((d) => (d.line > 0 ? `${d.file}:${d.line}:${d.col}: ${d.message}` : `${d.file}: ${d.message}`)).join('\n'));
    this.name = 'CompileError';
    this.diagnostics = sorted;
  }

  format(): string {
    return formatDiagnostics(this.diagnostics);
  }
}
