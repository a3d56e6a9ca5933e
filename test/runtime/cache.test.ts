import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheKey, inputHashesFor, lineageOf, looksLikePath, outputHashesFor, StepCache } from '../../runtime/cache.ts';
import { ArtifactStore } from '../../runtime/store.ts';
import { hashPath } from '../../common/hash.ts';
import { tempDir } from '../fixtures/jobs/util.ts';

const code = { package: '0.1.0', sources: 's1' };

test('the cache key is stable under key order and changes with kind, runner, code, params and inputs', () => {
  const base = { kind: 'train.sft', runner: 'builtin', code, params: { lr: 1e-4, data: 'd.jsonl', opts: { a: 1, b: [1, 2] } }, inputHashes: { 'd.jsonl': 'h1' } };
  const k = cacheKey(base);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(cacheKey({ ...base, params: { opts: { b: [1, 2], a: 1 }, data: 'd.jsonl', lr: 1e-4 } }), k);
  assert.equal(cacheKey(structuredClone(base)), k);
  const variants = [
    { ...base, kind: 'train.rl' },
    { ...base, runner: 'command' },
    { ...base, code: { ...code, sources: 's2' } },
    { ...base, code: { ...code, package: '0.2.0' } },
    { ...base, params: { ...base.params, lr: 2e-4 } },
    { ...base, params: { ...base.params, opts: { a: 1, b: [2, 1] } } },
    { ...base, inputHashes: { 'd.jsonl': 'h2' } },
  ];
  const keys = new Set(variants.map(cacheKey));
  assert.equal(keys.size, variants.length);
  assert.ok(!keys.has(k));
});

test('input hashes: every existing path among the params, by content', () => {
  const dir = tempDir('da-cache-');
  writeFileSync(join(dir, 'train.jsonl'), '{"q":1}\n');
  mkdirSync(join(dir, 'model'));
  writeFileSync(join(dir, 'model', 'config.json'), '{}');
  writeFileSync(join(dir, 'python'), 'not a path: a bare word');
  const params = {
    data: 'train.jsonl',
    nested: { list: [join(dir, 'model'), 'missing.jsonl'] },
    run: ['python', 'http://example.com/x.json', 'train.jsonl'],
    n: 3,
  };
  const h = inputHashesFor(params, dir);
  assert.deepEqual(Object.keys(h).sort(), [join(dir, 'model'), 'train.jsonl'].sort());
  assert.equal(h['train.jsonl'], hashPath(join(dir, 'train.jsonl')));
  assert.equal(h[join(dir, 'model')], hashPath(join(dir, 'model')));

  // Changing an input's content changes the key; putting it back restores it.
  const key = (p: unknown) => cacheKey({ kind: 'k', runner: 'builtin', code, params: p, inputHashes: inputHashesFor(p, dir) });
  const k1 = key(params);
  writeFileSync(join(dir, 'model', 'config.json'), '{"layers":2}');
  const k2 = key(params);
  assert.notEqual(k2, k1);
  writeFileSync(join(dir, 'model', 'config.json'), '{}');
  assert.equal(key(params), k1);

  for (const s of ['./data', 'a/b', '/abs', 'x.jsonl']) assert.ok(looksLikePath(s), s);
  for (const s of ['python', '', 'two\nlines', 'https://h/x.json', '1e-5']) assert.ok(!looksLikePath(s), s);
});

test('a cached step is returned only while its outputs still exist unchanged', () => {
  const store = new ArtifactStore(tempDir('da-cache-'));
  const cache = new StepCache(store);
  const step = store.stepDir('run-1', 'prep');
  const file = join(step, 'out.jsonl');
  const folder = join(step, 'model');
  writeFileSync(file, 'a\n');
  mkdirSync(folder);
  writeFileSync(join(folder, 'w.bin'), 'weights');
  const outputs = { data: file, model: folder, count: 2 };
  const key = cacheKey({ kind: 'data.prep', runner: 'builtin', code, params: {}, inputHashes: {} });
  assert.equal(cache.lookup(key), undefined);

  const entry = { runId: 'run-1', stepId: 'prep', outputs, outputHashes: outputHashesFor(outputs), finishedAt: '2026-01-01T00:00:00.000Z' };
  cache.record(key, entry);
  assert.deepEqual(cache.lookup(key), { key, ...entry });

  appendFileSync(file, 'b\n'); // modified output
  assert.equal(cache.lookup(key), undefined);
  writeFileSync(file, 'a\n'); // restored
  assert.ok(cache.lookup(key));
  writeFileSync(join(folder, 'extra.txt'), 'x'); // a folder output gained a file
  assert.equal(cache.lookup(key), undefined);
  rmSync(join(folder, 'extra.txt'));
  assert.ok(cache.lookup(key));
  rmSync(folder, { recursive: true }); // deleted output
  assert.equal(cache.lookup(key), undefined);

  // A damaged entry is a miss, not a crash; a malformed key is refused.
  writeFileSync(join(store.cacheDir(), `${key}.json`), '{"format":1,');
  assert.equal(cache.lookup(key), undefined);
  assert.throws(() => cache.lookup('../../etc/passwd'), /invalid cache key/);
});

test('a preset:NAME value is an input: editing the preset file invalidates the entry, the same file hits', () => {
  const dir = tempDir('da-cache-');
  const presets = join(dir, 'configs');
  mkdirSync(presets);
  writeFileSync(join(presets, 'tiny.json'), '{"hidden_size":64}');
  const store = new ArtifactStore(join(dir, 'store'));
  const cache = new StepCache(store);
  const params = { model: 'preset:tiny', data: 'train.jsonl', missing: 'preset:nothing' };
  const components = () => {
    const inputHashes = inputHashesFor(params, dir, presets);
    return { kind: 'train.sft', runner: 'builtin', code, inputHashes };
  };
  const keyOf = (c: ReturnType<typeof components>) => cacheKey({ ...c, params });
  const first = components();
  assert.deepEqual(Object.keys(first.inputHashes), ['preset:tiny'], 'a preset with no file is no input');
  assert.equal(first.inputHashes['preset:tiny'], hashPath(join(presets, 'tiny.json')));
  const key = keyOf(first);
  const lineage = lineageOf('train.sft', params);
  cache.record(key, { runId: 'run-1', stepId: 'sft', outputs: {}, outputHashes: {}, finishedAt: '2026-01-01T00:00:00.000Z', components: first, lineage });
  assert.ok(cache.lookup(keyOf(components())), 'unchanged preset: a hit');

  writeFileSync(join(presets, 'tiny.json'), '{"hidden_size":128}');
  const edited = components();
  const newKey = keyOf(edited);
  assert.notEqual(newKey, key);
  assert.equal(cache.lookup(newKey), undefined);
  assert.equal(cache.explainMiss(newKey, lineage, edited), 'input preset:tiny changed since run run-1');
});

test('a miss says what changed since the newest entry of the same kind and params', () => {
  const store = new ArtifactStore(tempDir('da-cache-'));
  const cache = new StepCache(store);
  const params = { lr: 1 };
  const lineage = lineageOf('rl.grpo', params);
  const old = { kind: 'rl.grpo', runner: 'builtin', code: { ...code, files: { 'jobs/rl.grpo.ts': 'a', 'rl/grpo.ts': 'b', 'rl/old.ts': 'c' } }, inputHashes: { 'd.jsonl': 'h1' } };
  const key = cacheKey({ ...old, params });
  assert.equal(cache.explainMiss(key, lineage, old), undefined, 'nothing recorded yet: nothing to explain');
  cache.record(key, { runId: 'run-7', stepId: 'grpo', outputs: {}, outputHashes: {}, finishedAt: '2026-01-01T00:00:00.000Z', components: old, lineage });

  const now = { ...old, code: { ...code, sources: 's2', files: { 'jobs/rl.grpo.ts': 'a', 'rl/grpo.ts': 'B', 'rl/new.ts': 'd' } } };
  assert.equal(cache.explainMiss(cacheKey({ ...now, params }), lineage, now), 'code of rl.grpo changed since run run-7 (rl/grpo.ts, rl/new.ts added, rl/old.ts removed)');
  const other = { ...old, runner: 'command', code: { ...code, package: '0.2.0' }, inputHashes: { 'd.jsonl': 'h2' } };
  assert.equal(
    cache.explainMiss(cacheKey({ ...other, params }), lineage, other),
    'the runner of rl.grpo (builtin → command), the package version (0.1.0 → 0.2.0) and input d.jsonl changed since run run-7',
  );
  assert.match(cache.explainMiss(key, lineage, old)!, /the outputs that step "grpo" of run run-7 recorded changed or are gone/);
});
