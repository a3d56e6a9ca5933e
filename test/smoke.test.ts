import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJobLine } from '../runtime/protocol.ts';

test('protocol lines are told apart from plain log lines', () => {
  assert.deepEqual(parseJobLine('{"type":"progress","current":3,"total":10}'), { type: 'progress', current: 3, total: 10 });
  assert.equal(parseJobLine('loss 1.23'), undefined);
  assert.equal(parseJobLine('{"type":"nonsense"}'), undefined);
  assert.equal(parseJobLine('{broken'), undefined);
});
