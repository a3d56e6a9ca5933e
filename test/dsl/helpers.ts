/** Test helpers: pipelines written to real temp files and compiled from there. */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compileFile, CompileError, type CompileOptions } from '../../dsl/compile.ts';
import type { Diagnostic } from '../../dsl/diagnostics.ts';
import type { Plan } from '../../dsl/plan.ts';

/** Writes files (name → text) into a fresh temp folder; returns the folder. */
export function writeFiles(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dsl-test-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** Compiles `main` (default pipeline.yaml) from the files; returns the Plan or the diagnostics. */
export function compileFiles(files: Record<string, string>, opts: CompileOptions = {}, main = Object.keys(files)[0]): { plan?: Plan; errors: Diagnostic[]; dir: string; formatted?: string } {
  const dir = writeFiles(files);
  try {
    return { plan: compileFile(main, { ...opts, cwd: dir }), errors: [], dir };
  } catch (err) {
    if (!(err instanceof CompileError)) throw err;
    return { errors: err.diagnostics, dir, formatted: err.format() };
  }
}

export function compileText(yaml: string, opts: CompileOptions = {}) {
  return compileFiles({ 'pipeline.yaml': yaml }, opts);
}

/** A small valid pipeline the error cases start from. */
export const BASE = `name: t
params:
  lr: { type: number, default: 0.01 }
  name: { type: string, default: abc }
steps:
  - id: kb
    uses: data.knowledge_base
  - id: sft
    uses: train.sft
    needs: kb
    with:
      model: preset:tiny
      data: \${{ steps.kb.outputs.sft }}
      learning_rate: \${{ params.lr }}
`;
