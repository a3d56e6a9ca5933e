/**
 * Writes test/fixtures/reward-conformance.jsonl: the cases of cases.ts with their `expected` values
 * computed by the TypeScript reward and verifiers (compute.ts). Run from the repository root:
 *
 *   node --import tsx scripts/reward-conformance/generate.ts
 *
 * test/data/reward-conformance.test.ts and python/tests/test_reward_conformance.py both read the file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../../engine/backend.ts';
import { CASES } from './cases.ts';
import { Computer } from './compute.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CONFORMANCE_FILE = join(ROOT, 'test/fixtures/reward-conformance.jsonl');

/** How far a model case's P(True) must stay from its threshold, so that float noise cannot flip the verdict. */
export const MODEL_MARGIN = 1e-3;

async function main(): Promise<void> {
  await initBackend();
  const computer = new Computer(ROOT);
  const lines: string[] = [];
  try {
    for (const c of CASES) {
      const expected = await computer.expected(c);
      if ((c.kind === 'classifier' || c.kind === 'causal_lm') && Math.abs((expected.pTrue as number) - (c.threshold ?? 0.4)) < MODEL_MARGIN) {
        throw new Error(`${c.id}: P(True) ${expected.pTrue} is within ${MODEL_MARGIN} of the threshold; pick another input or threshold`);
      }
      const { id, kind, ...inputs } = c;
      lines.push(JSON.stringify({ id, kind, ...inputs, expected }));
    }
  } finally {
    await computer.close();
  }
  writeFileSync(CONFORMANCE_FILE, lines.join('\n') + '\n');
  console.log(`${CONFORMANCE_FILE}: ${lines.length} cases`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
