// Bootstrap intervals on inputs whose answer can be worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapInterval, excludesZero, pairedBootstrap, quantile } from '../../evaluation/bootstrap.ts';

test('quantiles interpolate between neighbours (type 7)', () => {
  assert.equal(quantile([0, 1], 0.5), 0.5);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
  assert.equal(quantile([0, 10], 0.975), 9.75);
  assert.equal(quantile([7], 0.025), 7);
});

test('every item correct: the accuracy is 1 and so is every resample, [1, 1]', () => {
  assert.deepEqual(bootstrapInterval([1, 1, 1, 1, 1]), { estimate: 1, lo: 1, hi: 1, n: 5 });
  assert.deepEqual(bootstrapInterval([0, 0, 0]), { estimate: 0, lo: 0, hi: 0, n: 3 });
});

test('one correct of four: resample means are Binomial(4, 1/4)/4, so the 95% interval is [0, 0.75]', () => {
  // P(mean = 0) = 0.316 > 2.5%, and P(mean <= 0.5) = 0.949 < 97.5% < P(mean <= 0.75) = 0.996,
  // both far enough from the cut for 2000 resamples.
  const i = bootstrapInterval([0, 0, 0, 1], { seed: 3 });
  assert.equal(i.estimate, 0.25);
  assert.equal(i.lo, 0);
  assert.equal(i.hi, 0.75);
});

test('on 100 items half correct the interval is close to the normal one, 0.5 ± 0.098', () => {
  const scores = Array.from({ length: 100 }, (_, k) => k % 2);
  const i = bootstrapInterval(scores, { seed: 'x' });
  assert.ok(Math.abs(i.lo - 0.402) < 0.02, `lo ${i.lo}`);
  assert.ok(Math.abs(i.hi - 0.598) < 0.02, `hi ${i.hi}`);
  // Seeded: the same interval again; another seed, nearly the same.
  assert.deepEqual(bootstrapInterval(scores, { seed: 'x' }), i);
  const other = bootstrapInterval(scores, { seed: 'y' });
  assert.ok(Math.abs(other.lo - i.lo) < 0.03 && Math.abs(other.hi - i.hi) < 0.03);
});

test('identical stages: the paired gain is 0 with interval [0, 0], however the items are resampled', () => {
  const a = [1, 0, 1, 1, 0, 0, 1, 0];
  const g = pairedBootstrap(a, [...a]);
  assert.deepEqual(g, { estimate: 0, lo: 0, hi: 0, n: 8 });
  assert.equal(excludesZero(g), false);
});

test('the paired gain resamples items with both their scores', () => {
  // One item gained, three unchanged: the differences are those of the one-of-four case.
  const g = pairedBootstrap([0, 0, 0, 0], [1, 0, 0, 0], { seed: 3 });
  assert.deepEqual(g, { estimate: 0.25, lo: 0, hi: 0.75, n: 4 });
  // Every item gained: a gain of 1 whatever the resample, significant.
  const all = pairedBootstrap([0, 0, 0], [1, 1, 1]);
  assert.deepEqual(all, { estimate: 1, lo: 1, hi: 1, n: 3 });
  assert.equal(excludesZero(all), true);
  // Unpaired, the same two accuracies (0.5 and 0.6 on 10 items) would be far less certain than
  // paired when the stages agree on most items: here they differ on one item only.
  const before = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
  const after = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
  const paired = pairedBootstrap(before, after, { seed: 1 });
  assert.ok(paired.lo >= 0 && paired.hi <= 0.3, `paired [${paired.lo}, ${paired.hi}]`);
});

test('bad input is refused with what is wrong', () => {
  assert.throws(() => bootstrapInterval([]), /no items/);
  assert.throws(() => pairedBootstrap([1], [1, 0]), /one score of each stage per item: 1 and 2/);
  assert.throws(() => bootstrapInterval([1], { resamples: 0 }), /resamples must be a positive integer/);
  assert.throws(() => bootstrapInterval([1], { level: 1 }), /level must be between 0 and 1/);
});
