/**
 * The project's layers. Every top-level folder (and root file) sits on a layer; a module may
 * import from its own layer and those below. The import graph comes from the sources (tests
 * excluded): every relative `from '...'`, `import '...'` and `import('...')`, type-only imports
 * included, since they couple the folders as much as any other.
 *
 * Checked: at most MAX_UPWARD imports run up the layers (each listed in ALLOWED_UPWARD with why),
 * no cycle between top-level folders, no cycle between files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Bottom to top. Folders on one line share a layer (they may import each other, without cycles). */
export const LAYERS: string[][] = [
  ['contract'], // the job contract: protocol messages, job context, user errors, param parsing
  ['common'], // files, hashes, presets, random numbers, text
  ['engine'], // the TensorFlow.js engine
  ['data'], // formats, loaders, teacher client, verifiers, knowledge base
  ['train'], // the SFT trainer
  ['rl', 'evaluation'], // RL trainers; evaluation client, scorer and server
  ['dsl'], // the pipeline language and the step kinds' schemas and runners
  ['jobs'], // the built-in job of each step kind
  ['workflows'], // the pipeline workflow (deterministic, sandboxed) and what it exchanges
  ['runtime'], // the supervisor, store, cache, embedded server and Temporal client
  ['activities'], // the step activity
  ['worker.ts'], // the worker process
  ['cli'], // the command line
  ['bench', 'scripts'], // benchmarks and maintenance scripts
];

/** Imports allowed to run up the layers: "from -> to" (top-level names) → why. */
export const ALLOWED_UPWARD: Record<string, string> = {};
const MAX_UPWARD = 2;

const SKIP = new Set(['node_modules', 'test', '.git', '.tools', '.doctor-agent']);

function sources(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || SKIP.has(e.name)) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** File → the project files it imports (relative to the root, '/'-separated). */
export function fileGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources()) {
    // Comments may quote import lines; drop them first (block comments, then line comments).
    const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    const from = relative(ROOT, file).split(sep).join('/');
    const targets = new Set<string>();
    for (const m of text.matchAll(IMPORT)) {
      const to = relative(ROOT, resolve(dirname(file), m[1])).split(sep).join('/');
      if (!to.startsWith('..') && !to.startsWith('test/')) targets.add(to);
    }
    graph.set(from, [...targets].sort());
  }
  return graph;
}

const top = (path: string) => path.split('/')[0];

function layerOf(name: string): number {
  const i = LAYERS.findIndex((l) => l.includes(name));
  return i;
}

/** Strongly connected components with more than one node (or a self-loop): the cycles. */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>(), low = new Map<string, number>(), on = new Set<string>();
  const stack: string[] = [], found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

test('every top-level folder and root file has a layer', () => {
  const names = new Set([...fileGraph().keys()].map(top));
  const missing = [...names].filter((n) => layerOf(n) < 0);
  assert.deepEqual(missing, [], `add these to LAYERS in test/architecture.test.ts: ${missing.join(', ')}`);
});

test(`at most ${MAX_UPWARD} imports run up the layers, each one declared`, () => {
  const upward: string[] = [];
  for (const [from, tos] of fileGraph()) {
    for (const to of tos) {
      const a = top(from), b = top(to);
      if (a !== b && layerOf(b) > layerOf(a)) upward.push(`${from} -> ${to}`);
    }
  }
  const undeclared = upward.filter((u) => {
    const [from, to] = u.split(' -> ');
    return !(`${top(from)} -> ${top(to)}` in ALLOWED_UPWARD);
  });
  assert.deepEqual(undeclared, [], 'imports that run up the layers');
  assert.ok(upward.length <= MAX_UPWARD, `${upward.length} upward imports:\n${upward.join('\n')}`);
});

test('no cycle between top-level folders', () => {
  const folders = new Map<string, Set<string>>();
  for (const [from, tos] of fileGraph()) {
    const a = top(from);
    if (!folders.has(a)) folders.set(a, new Set());
    for (const to of tos) if (top(to) !== a) folders.get(a)!.add(top(to));
  }
  const graph = new Map([...folders].map(([k, v]) => [k, [...v]]));
  assert.deepEqual(cycles(graph), []);
});

test('no cycle between files', () => {
  assert.deepEqual(cycles(fileGraph()), []);
});

test('the checks see what they check: a cycle and an upward import are found', () => {
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c']]);
  assert.ok(layerOf('cli') > layerOf('runtime') && layerOf('runtime') > layerOf('contract'));
  const g = fileGraph();
  assert.ok((g.get('jobs/main.ts') ?? []).includes('contract/protocol.ts'), 'the graph holds jobs/main.ts -> contract/protocol.ts');
});
