/**
 * The code version in the step-cache key (runtime/code-version.ts): the package version and a
 * content hash of the files a step kind's job imports, transitively. Each test hashes a small
 * source tree of its own in a temporary folder, never the project's files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheKey, lineageOf, StepCache, type KeyComponents } from '../../runtime/cache.ts';
import { CodeVersions, type CodeVersion } from '../../runtime/code-version.ts';
import { runnerFor } from '../../runtime/runners.ts';
import { ArtifactStore } from '../../runtime/store.ts';
import { tempDir } from '../fixtures/jobs/util.ts';

/** A project: jobs/main.ts, a kind toy.train whose job imports lib/a.ts, which imports lib/b.ts; lib/other.ts is imported by nothing. */
function sourceTree(): string {
  const root = tempDir('da-code-');
  const put = (rel: string, text: string) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  put('package.json', '{"name":"toy","version":"1.0.0"}');
  put('jobs/main.ts', "import { kind } from './context.ts';\nconsole.log(kind);\n");
  put('jobs/context.ts', "export const kind = 'main';\n");
  put('jobs/toy.train.ts', "import { lr } from '../lib/a.ts';\nimport type { Shape } from '../lib/types.ts';\nexport async function run(): Promise<Shape> { return { lr: lr() }; }\n");
  put('jobs/toy.other.ts', "export async function run() { return {}; }\n");
  put('lib/a.ts', "import { base } from './b.ts';\nexport const lr = () => base * 2;\n");
  put('lib/b.ts', 'export const base = 1;\n');
  put('lib/types.ts', 'export interface Shape { lr: number }\n');
  put('lib/other.ts', 'export const unused = 1;\n');
  put('runtime/command.ts', 'export const argv = (x: string[]) => x;\n');
  return root;
}

const versions = (root: string) => new CodeVersions({ root, jobDirs: () => [join(root, 'jobs')] });

test('the sources of a kind are its job, jobs/main.ts and what they import, transitively', async () => {
  const root = sourceTree();
  const v = await versions(root).get('builtin', 'toy.train');
  assert.equal(v.package, '1.0.0');
  assert.deepEqual(Object.keys(v.files).sort(), ['jobs/context.ts', 'jobs/main.ts', 'jobs/toy.train.ts', 'lib/a.ts', 'lib/b.ts']);
  assert.match(v.sources, /^[0-9a-f]{64}$/);
  const other = await versions(root).get('builtin', 'toy.other');
  assert.notEqual(other.sources, v.sources, 'another kind, other sources');
  const cmd = await versions(root).get('command', 'command');
  assert.deepEqual(Object.keys(cmd.files), ['runtime/command.ts']);
  assert.notEqual((await versions(root).get('builtin', 'no.such.kind')).sources, v.sources);
  await assert.rejects(versions(root).get('python', 'toy.train'), /unknown runner "python"/);
  assert.equal(runnerFor('command'), 'command');
  assert.equal(runnerFor('rl.grpo'), 'builtin');
  assert.equal(runnerFor('rl.grpo', 'python'), 'python');
});

test('editing an imported file changes the version, also for a worker that computed it before; other files do not', async () => {
  const root = sourceTree();
  const cv = versions(root); // kept, as a worker keeps it between steps
  const v1 = await cv.get('builtin', 'toy.train');
  assert.deepEqual(await cv.get('builtin', 'toy.train'), v1, 'unchanged code: the same version');

  writeFileSync(join(root, 'lib', 'other.ts'), 'export const unused = 2;\n');
  assert.equal((await cv.get('builtin', 'toy.train')).sources, v1.sources, 'a file the job does not import');

  writeFileSync(join(root, 'lib', 'b.ts'), 'export const base = 10;\n');
  const v2 = await cv.get('builtin', 'toy.train');
  assert.notEqual(v2.sources, v1.sources);
  assert.notEqual(v2.files['lib/b.ts'], v1.files['lib/b.ts']);
  assert.equal((await versions(root).get('builtin', 'toy.train')).sources, v2.sources, 'a fresh instance agrees');

  // A new import joins the graph; the package version is part of the version.
  writeFileSync(join(root, 'lib', 'a.ts'), "import { base } from './b.ts';\nimport { unused } from './other.ts';\nexport const lr = () => base * 2 + unused;\n");
  const v3 = await cv.get('builtin', 'toy.train');
  assert.ok('lib/other.ts' in v3.files);
  writeFileSync(join(root, 'package.json'), '{"name":"toy","version":"1.1.0"}');
  assert.equal((await versions(root).get('builtin', 'toy.train')).package, '1.1.0');
});

test('the same tree elsewhere has the same version (paths are relative to the project)', async () => {
  const a = await versions(sourceTree()).get('builtin', 'toy.train');
  const b = await versions(sourceTree()).get('builtin', 'toy.train');
  assert.equal(a.sources, b.sources);
});

test('editing a kind\'s source invalidates its cache entry and the miss names the file; unchanged code hits', async () => {
  const root = sourceTree();
  const cv = versions(root);
  const cache = new StepCache(new ArtifactStore(tempDir('da-code-store-')));
  const params = { lr: 0.1 };
  const keyOf = (code: CodeVersion) => {
    const components: KeyComponents = { kind: 'toy.train', runner: 'builtin', code, inputHashes: {} };
    return { key: cacheKey({ ...components, params }), components };
  };
  const first = keyOf(await cv.get('builtin', 'toy.train'));
  cache.record(first.key, {
    runId: 'run-1', stepId: 'train', outputs: { n: 1 }, outputHashes: {}, finishedAt: '2026-01-01T00:00:00.000Z',
    components: first.components, lineage: lineageOf('toy.train', params),
  });
  assert.equal(cache.lookup(keyOf(await cv.get('builtin', 'toy.train')).key)?.runId, 'run-1', 'same code: a hit');

  writeFileSync(join(root, 'lib', 'b.ts'), 'export const base = 3;\n');
  const now = keyOf(await cv.get('builtin', 'toy.train'));
  assert.notEqual(now.key, first.key);
  assert.equal(cache.lookup(now.key), undefined);
  assert.equal(cache.explainMiss(now.key, lineageOf('toy.train', params), now.components), 'code of toy.train changed since run run-1 (lib/b.ts)');
});
