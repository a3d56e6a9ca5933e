/**
 * The reward and verifiers against test/fixtures/reward-conformance.jsonl, the case file the Python
 * runner's test (python/tests/test_reward_conformance.py) reads too. Each case's expected values are
 * recomputed here from the TypeScript code: a change of behaviour on either side, or a case list
 * (scripts/reward-conformance/cases.ts) changed without regenerating the file, fails.
 * The judge servers are played by a scripted server on 127.0.0.1 (real HTTP), see compute.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { initBackend } from '../../engine/backend.ts';
import { CASES, type Case } from '../../scripts/reward-conformance/cases.ts';
import { Computer, type Expected } from '../../scripts/reward-conformance/compute.ts';
import { CONFORMANCE_FILE, ROOT } from '../../scripts/reward-conformance/generate.ts';

type Line = Case & { expected: Expected };

const lines: Line[] = readFileSync(CONFORMANCE_FILE, 'utf8').split('\n').filter((l) => l !== '').map((l, i) => {
  try {
    return JSON.parse(l) as Line;
  } catch (err) {
    throw new Error(`${CONFORMANCE_FILE}:${i + 1}: ${(err as Error).message}`);
  }
});

const computer = new Computer(ROOT);
before(async () => { await initBackend(); });
after(async () => { await computer.close(); });

/** P(True) of a model is compared within this tolerance (float32 forward passes); everything else exactly. */
const MODEL_TOLERANCE = 1e-4;

test('the file holds the cases of cases.ts, in order, with every kind', () => {
  const inputs = lines.map(({ expected: _, ...c }) => c);
  assert.deepEqual(inputs, JSON.parse(JSON.stringify(CASES)), 'cases.ts changed: run node --import tsx scripts/reward-conformance/generate.ts');
  assert.ok(lines.length >= 80, `${lines.length} cases`);
  assert.deepEqual(new Set(lines.map((l) => l.kind)), new Set(['reward', 'rule', 'threshold', 'llm', 'logprob', 'classifier', 'causal_lm']));
  assert.equal(new Set(lines.map((l) => l.id)).size, lines.length, 'ids are unique');
});

for (const [i, line] of lines.entries()) {
  test(`${CONFORMANCE_FILE.split('/').pop()}:${i + 1} ${line.id}`, async () => {
    const { expected, ...c } = line;
    const got = await computer.expected(c as Case);
    if (c.kind === 'classifier' || c.kind === 'causal_lm') {
      const { pTrue, ...rest } = got;
      const { pTrue: want, ...wantRest } = expected;
      assert.ok(Math.abs((pTrue as number) - (want as number)) <= MODEL_TOLERANCE, `P(True) ${pTrue} vs ${want}`);
      assert.deepEqual(rest, wantRest);
    } else {
      assert.deepEqual(got, expected);
    }
  });
}
