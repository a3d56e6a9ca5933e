import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ItemCache } from '../../data/item-cache.ts';
import { itemIds } from '../../data/item-runner.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'item-cache-'));

test('results survive a reopen; another stage hash does not see them', () => {
  const file = join(dir(), 'c.jsonl');
  const a = new ItemCache<{ v: number }>(file, 'stage-1');
  a.put('x', { v: 1 });
  a.put('y', { v: 2 });
  const b = new ItemCache<{ v: number }>(file, 'stage-1');
  assert.equal(b.size, 2);
  assert.deepEqual(b.get('y'), { v: 2 });
  const c = new ItemCache(file, 'stage-2');
  assert.equal(c.size, 0);
  assert.equal(c.has('x'), false);
});

test('a torn last line (crash mid-append) is ignored, and the next append starts on its own line', () => {
  const file = join(dir(), 'c.jsonl');
  new ItemCache(file, 's').put('x', 1);
  appendFileSync(file, '{"id":"y","stage":"s","val');
  const b = new ItemCache<number>(file, 's');
  assert.equal(b.tornLines, 1);
  assert.equal(b.has('y'), false);
  b.put('z', 3);
  const c = new ItemCache<number>(file, 's');
  assert.deepEqual([c.get('x'), c.get('y'), c.get('z')], [1, undefined, 3]);
  assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 3);
});

test('entries of an older checkpoint file are merged in and written forward', () => {
  const d = dir();
  const old = new ItemCache(join(d, 'old.jsonl'), 's');
  old.put('a', 'A');
  const fresh = new ItemCache<string>(join(d, 'new.jsonl'), 's', join(d, 'old.jsonl'));
  assert.equal(fresh.get('a'), 'A');
  assert.equal(new ItemCache<string>(join(d, 'new.jsonl'), 's').get('a'), 'A');
});

test('item ids are content hashes; repeated items get distinct ids', () => {
  const ids = itemIds([{ q: 1 }, { q: 2 }, { q: 1 }]);
  assert.equal(ids[0].length, 16);
  assert.notEqual(ids[0], ids[1]);
  assert.equal(ids[2], `${ids[0]}#1`);
  assert.deepEqual(itemIds([{ q: 1 }]), [ids[0]]);
});
