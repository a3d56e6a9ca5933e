/**
 * Knowledge-base generator benchmark: items per second (training items with their MCQ,
 * verifiable and SFT forms, plus evaluation items) for both reasoning styles, and the
 * size of the files written. Median of several runs after a warm-up.
 *
 *   node --import tsx bench/kb.ts
 */
import { generateKb, serializeKb } from '../data/kb/generate.ts';
import type { CotStyle } from '../data/kb/reasoning.ts';
import { median } from './lib/stats.ts';

const trainSize = 10_000;
const evalSize = 1_000;
for (const style of ['full', 'brief'] as CotStyle[]) {
  generateKb({ seed: 0, trainSize: 500, evalSize: 50, cotStyle: style }); // warm-up
  const times: number[] = [];
  let bytes = 0;
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    const d = generateKb({ seed: run, trainSize, evalSize, cotStyle: style });
    const text = serializeKb(d);
    times.push((performance.now() - t0) / 1000);
    bytes = Object.values(text).reduce((n, s) => n + Buffer.byteLength(s), 0);
  }
  const items = trainSize + 2 * evalSize;
  console.log(`${style.padEnd(5)}  ${Math.round(items / median(times))} items/s  (${items} items in ${median(times).toFixed(2)} s, ${(bytes / 1e6).toFixed(1)} MB of JSON)`);
}
