import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJobLine } from '../contract/protocol.ts';

test('protocol lines are told apart from plain log lines', () => {
  assert.deepEqual(parseJobLine('{"type":"progress","current":3,"total":10}'), { type: 'progress', current: 3, total: 10 });
  assert.equal(parseJobLine('loss 1.23'), undefined);
  assert.equal(parseJobLine('{"type":"nonsense"}'), undefined);
  assert.equal(parseJobLine('{broken'), undefined);
});

import { Rng } from '../common/rng.ts';
test('rng is seeded and resumes exactly from its state', () => {
  const a = new Rng(42);
  a.next(); a.next();
  const state = a.getState();
  const rest = [a.next(), a.int(10), a.normal()];
  const b = Rng.fromState(state);
  assert.deepEqual([b.next(), b.int(10), b.normal()], rest);
  assert.notEqual(new Rng(1).next(), new Rng(2).next());
});
