import { test } from 'node:test';
import assert from 'node:assert/strict';
import { learnBpe } from '../../engine/tokenizer-bpe.ts';
import { Rng } from '../../common/rng.ts';

/** The slow textbook algorithm: recount every pair before every merge. Same tie-break (count, then ids). */
function naiveBpe(alphabet: string[], words: Map<string, number>, vocabSize: number, minFrequency: number) {
  const tokens = [...alphabet];
  const idOf = new Map(alphabet.map((t, i) => [t, i]));
  let seqs = [...words].map(([w, n]) => ({ s: [...w].map((c) => idOf.get(c)!), n }));
  const merges: [string, string][] = [];
  while (tokens.length < vocabSize) {
    const counts = new Map<string, number>();
    for (const { s, n } of seqs) for (let i = 0; i + 1 < s.length; i++) {
      const k = `${s[i]},${s[i + 1]}`;
      counts.set(k, (counts.get(k) ?? 0) + n);
    }
    let best: [number, number] | null = null, bestCount = 0;
    for (const [k, c] of counts) {
      const [a, b] = k.split(',').map(Number);
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < minFrequency) break;
    const [a, b] = best;
    const text = tokens[a] + tokens[b];
    let id = idOf.get(text);
    if (id === undefined) { id = tokens.length; tokens.push(text); idOf.set(text, id); }
    merges.push([tokens[a], tokens[b]]);
    seqs = seqs.map(({ s, n }) => {
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { out.push(id!); i++; } else out.push(s[i]);
      }
      return { s: out, n };
    });
  }
  return { tokens, merges };
}

test('learnBpe: hand-computed merges on a tiny table', () => {
  // abab x2, abc x1: (a,b) occurs 5 times -> "ab"; then (ab,ab) twice beats (ab,c) once -> "abab".
  const words = new Map([['abab', 2], ['abc', 1]]);
  const r = learnBpe(['a', 'b', 'c'], words, { vocabSize: 10, minFrequency: 2 });
  assert.deepEqual(r.merges, [['a', 'b'], ['ab', 'ab']]);
  assert.deepEqual(r.tokens, ['a', 'b', 'c', 'ab', 'abab']);
});

test('learnBpe: overlapping runs (aaaa) merge left to right and stop at the target size', () => {
  const words = new Map([['aaaa', 3]]);
  // (a,a) counted 3 per word (overlapping) -> merge to aa: word becomes [aa, aa]; then (aa,aa) x3.
  const r = learnBpe(['a'], words, { vocabSize: 2 });
  assert.deepEqual(r.merges, [['a', 'a']]);
  const r2 = learnBpe(['a'], words, { vocabSize: 10 });
  assert.deepEqual(r2.merges, [['a', 'a'], ['aa', 'aa']]);
});

test('learnBpe: the incremental counts agree with the textbook algorithm on random tables', () => {
  const rng = new Rng('bpe-vs-naive');
  const alphabet = ['a', 'b', 'c', 'd', 'e'];
  for (let trial = 0; trial < 20; trial++) {
    const words = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const len = 1 + rng.int(9);
      let w = '';
      for (let j = 0; j < len; j++) w += alphabet[rng.int(trial % 2 === 0 ? 2 : 5)];
      words.set(w, (words.get(w) ?? 0) + 1 + rng.int(4));
    }
    const fast = learnBpe(alphabet, words, { vocabSize: 60, minFrequency: 2 });
    const slow = naiveBpe(alphabet, words, 60, 2);
    assert.deepEqual(fast.merges, slow.merges, `trial ${trial}`);
    assert.deepEqual(fast.tokens, slow.tokens, `trial ${trial}`);
  }
});

test('learnBpe: rejects symbols outside the alphabet', () => {
  assert.throws(() => learnBpe(['a'], new Map([['ab', 1]]), { vocabSize: 5 }), /"b" is not in the alphabet/);
});
