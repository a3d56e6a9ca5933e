/**
 * Byte-pair-encoding merge learning over a table of word counts.
 *
 * Words are sequences of symbol ids (initially one id per byte). Each round merges the most
 * frequent adjacent pair everywhere. Pair counts are kept incrementally: a merge only visits the
 * words that contain the pair and adjusts the counts of the neighbours it changes, and a
 * max-heap with lazy deletion finds the next best pair. Ties go to the pair with the smaller
 * first id, then the smaller second id, so the result is deterministic.
 */

export interface BpeResult {
  /** Token strings by id: the alphabet first, then each new token in the order it was made. */
  tokens: string[];
  /** Merges in priority order, as pairs of token strings. */
  merges: [string, string][];
}

export interface BpeOptions {
  /** Stop when this many tokens exist (alphabet included). */
  vocabSize: number;
  /** Do not merge pairs seen fewer times than this. */
  minFrequency?: number;
  /** Called every `every` merges with (merges done, tokens so far). */
  onProgress?: (merges: number, tokens: number) => void;
}

const SHIFT = 0x200000; // pair key = a * SHIFT + b; ids stay below 2^21

/** A binary max-heap of [count, key] with the tie-break described above. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i], cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!, lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < this.keys.length && this.before(l, m)) m = l;
        if (r < this.keys.length && this.before(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/**
 * Learns merges. `alphabet` gives the initial tokens (ids 0..n-1); `words` maps each word,
 * written as a string of alphabet characters, to its count.
 */
export function learnBpe(alphabet: string[], words: Map<string, number>, options: BpeOptions): BpeResult {
  const minFrequency = options.minFrequency ?? 2;
  if (options.vocabSize >= SHIFT) throw new Error(`vocab size ${options.vocabSize} is too large (max ${SHIFT - 1})`);
  const tokens = [...alphabet];
  const idOf = new Map<string, number>(alphabet.map((t, i) => [t, i]));
  if (idOf.size !== alphabet.length) throw new Error('learnBpe: the alphabet has duplicate symbols');

  // Words as id arrays (mutable, shrinking as merges apply) and their counts.
  const seqs: number[][] = [];
  const freq: number[] = [];
  for (const [word, count] of words) {
    const seq: number[] = [];
    for (const ch of word) {
      const id = idOf.get(ch);
      if (id === undefined) throw new Error(`learnBpe: symbol ${JSON.stringify(ch)} is not in the alphabet`);
      seq.push(id);
    }
    if (seq.length > 1) {
      seqs.push(seq);
      freq.push(count);
    }
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const add = (key: number, w: number, n: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + n);
    if (n > 0) {
      let set = pairWords.get(key);
      if (!set) pairWords.set(key, (set = new Set()));
      set.add(w);
    }
  };
  for (let w = 0; w < seqs.length; w++) {
    const s = seqs[w];
    for (let i = 0; i + 1 < s.length; i++) add(s[i] * SHIFT + s[i + 1], w, freq[w]);
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [string, string][] = [];
  const touched = new Set<number>();
  while (tokens.length < options.vocabSize && heap.size > 0) {
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (count !== current) continue; // stale entry; the live count was pushed when it changed
    if (current < minFrequency) break;
    const a = Math.floor(key / SHIFT), b = key % SHIFT;
    const text = tokens[a] + tokens[b];
    let id = idOf.get(text);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(text);
      idOf.set(text, id);
    }
    merges.push([tokens[a], tokens[b]]);

    // Each word holding the pair: remove its old pairs, merge, add its new pairs back.
    touched.clear();
    for (const w of pairWords.get(key) ?? []) {
      const s = seqs[w], n = freq[w];
      let found = false;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) found = true;
      if (!found) continue; // the set may keep words that lost the pair to an earlier merge
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(id);
          i++;
        } else out.push(s[i]);
      }
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i] * SHIFT + s[i + 1];
        add(k, w, -n);
        touched.add(k);
      }
      for (let i = 0; i + 1 < out.length; i++) {
        const k = out[i] * SHIFT + out[i + 1];
        add(k, w, n);
        touched.add(k);
      }
      seqs[w] = out;
    }
    touched.delete(key);
    pairCount.delete(key);
    pairWords.delete(key);
    for (const k of touched) {
      const c = pairCount.get(k) ?? 0;
      if (c > 0) heap.push(c, k);
      else {
        pairCount.delete(k);
        pairWords.delete(k);
      }
    }
    if (options.onProgress && merges.length % 100 === 0) options.onProgress(merges.length, tokens.length);
  }
  return { tokens, merges };
}
