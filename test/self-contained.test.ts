import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

// A user's clone holds the repository alone: no source, test, pipeline or document may reach
// for a folder beside it. The pattern is assembled so that this file does not match itself.
const ROOT = join(import.meta.dirname, '..');
const OUTSIDE = new RegExp(['\\.\\.', 'shared'].join('[\\\\/]'));
const SKIP = new Set(['node_modules', '.git', '.tools', '.doctor-agent', 'dist', '.venv', '__pycache__']);
const TEXT = /\.(ts|mts|mjs|js|json|ya?ml|md|py|sh|toml|txt|html)$/;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) return walk(p);
    return TEXT.test(name) && st.size < 5_000_000 ? [p] : [];
  });
}

test('no file of the repository refers to a folder outside it', () => {
  const files = walk(ROOT);
  assert.ok(files.length > 100, `only ${files.length} files found under ${ROOT}`);
  const offenders = files.flatMap((f) => readFileSync(f, 'utf8').split('\n')
    .flatMap((line, i) => (OUTSIDE.test(line) ? [`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`] : [])));
  assert.deepEqual(offenders, [], 'files that refer to a folder beside the repository');
});

test('the sample data the pipelines and tests use is in the repository', () => {
  for (const name of ['huatuo-o1-demo.json', 'eval-format-sample.json']) {
    const items = JSON.parse(readFileSync(join(ROOT, 'samples', name), 'utf8'));
    assert.ok(Object.keys(items).length > 0, name);
  }
});
