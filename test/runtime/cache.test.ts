import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheKey, inputHashesFor, looksLikePath, outputHashesFor, StepCache } from '../../runtime/cache.ts';
import { ArtifactStore } from '../../runtime/store.ts';
import { hashPath } from '../../common/hash.ts';
import { tempDir } from '../fixtures/jobs/util.ts';

test('the cache key is stable under key order and changes with kind, params and inputs', () => {
  const base = { kind: 'train.sft', params: { lr: 1e-4, data: 'd.jsonl', opts: { a: 1, b: [1, 2] } }, inputHashes: { 'd.jsonl': 'h1' } };
  const k = cacheKey(base);
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(cacheKey({ ...base, params: { opts: { b: [1, 2], a: 1 }, data: 'd.jsonl', lr: 1e-4 } }), k);
  assert.equal(cacheKey(structuredClone(base)), k);
  const variants = [
    { ...base, kind: 'train.rl' },
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
  const key = (p: unknown) => cacheKey({ kind: 'k', params: p, inputHashes: inputHashesFor(p, dir) });
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
  const key = cacheKey({ kind: 'data.prep', params: {}, inputHashes: {} });
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
