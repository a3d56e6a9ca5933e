/**
 * Knowledge-base generator benchmark: items per second (training items with their MCQ,
 * verifiable and SFT forms, plus evaluation items) for both reasoning styles, and the
 * size of the files written. Median of several runs after a warm-up.
 *
 *   node --import tsx bench/main.ts kb      (or node --import tsx bench/kb.ts)
 */
import { generateKb, serializeKb } from '../data/kb/generate.ts';
import type { CotStyle } from '../data/kb/reasoning.ts';
import { median } from './lib/stats.ts';

const trainSize = 10_000;
const evalSize = 1_000;

export async function run(): Promise<object> {
  const styles: Record<string, { items_per_s: number; items: number; seconds: number; json_mb: number }> = {};
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
    const seconds = median(times);
    console.log(`${style.padEnd(5)}  ${Math.round(items / seconds)} items/s  (${items} items in ${seconds.toFixed(2)} s, ${(bytes / 1e6).toFixed(1)} MB of JSON)`);
    styles[style] = { items_per_s: Math.round(items / seconds), items, seconds: +seconds.toFixed(3), json_mb: +(bytes / 1e6).toFixed(1) };
  }
  return { styles };
}

if (import.meta.url === `file://${process.argv[1]}`) await run();
