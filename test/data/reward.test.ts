/**
 * HuatuoGPT-o1's RL reward, case by case from its rules: the format needs "## Final Response"
 * followed by a blank line exactly once and "## Thinking" exactly once; the model verifier's
 * P(True) must be strictly above 0.4. The verifier here is a stand-in returning a fixed P(True)
 * (a real model cannot be made to output exactly 0.4); the classifier itself is tested in
 * test/engine/parity-classifier.test.ts and test/data/verifiers-classifier.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HUATUO_REWARD, huatuoFormat, pythonStrip, rewardFor, countOccurrences } from '../../data/reward.ts';
import { huatuoReward, makeVerifier, type VerifyInput } from '../../data/verifiers.ts';
import { score } from '../../rl/score.ts';
import type { VerifiableItem } from '../../data/formats.ts';
import { GrpoParams } from '../../dsl/kinds/grpo.ts';
import { PpoParams } from '../../dsl/kinds/ppo.ts';

const item: VerifiableItem = { 'Open-ended Verifiable Question': 'Which vitamin deficiency causes scurvy?', 'Ground-True Answer': 'Vitamin C' };
const good = '## Thinking\n\nCollagen synthesis needs ascorbate.\n\n## Final Response\n\nVitamin C deficiency.';

async function rewardWith(text: string, pTrue: number): Promise<{ reward: number; asked: VerifyInput[] }> {
  const asked: VerifyInput[] = [];
  const v = makeVerifier({ type: 'model', model: 'medical_o1_verifier_3B' }, { scorer: async () => pTrue });
  const spy = { name: v.name, verify: (input: VerifyInput) => { asked.push(input); return v.verify(input); } };
  const s = await score([text], [item], [0], spy);
  return { reward: s.rewards[0], asked };
}

test('P(True) strictly above 0.4 is correct (1.0); exactly 0.4 or below is wrong (0.1)', async () => {
  for (const [p, want] of [[0.4, 0.1], [0.4000001, 1.0], [0.3999999, 0.1], [0.9, 1.0], [0, 0.1], [1, 1.0]] as const) {
    assert.equal((await rewardWith(good, p)).reward, want, `P(True) = ${p}`);
  }
});

test('the format: "## Final Response" needs the blank line after it, and each heading exactly once', async () => {
  const cases: [string, string, number][] = [
    ['well formed', good, 1.0],
    ['"## Final Response:" without the blank line', '## Thinking\n\nx\n\n## Final Response:\nVitamin C', 0.0],
    ['"## Final Response" then one newline', '## Thinking\n\nx\n\n## Final Response\nVitamin C', 0.0],
    ['two "## Thinking"', '## Thinking\n\nx\n\n## Thinking\n\ny\n\n## Final Response\n\nVitamin C', 0.0],
    ['no "## Thinking"', '## Final Response\n\nVitamin C', 0.0],
    ['two "## Final Response\\n\\n"', good + '\n\n## Final Response\n\nVitamin C', 0.0],
    ['a second "## Final Response" without the blank line still counts once', good + '\n## Final Response\nmore', 1.0],
    ['"## Thinking" is counted anywhere, e.g. inside a longer heading', '## Thinking\n\nx\n\n## Thinking process\n\n## Final Response\n\nC', 0.0],
    ['"## Thinking" without a blank line is enough', '## Thinking x\n## Final Response\n\nVitamin C', 1.0],
    ['empty', '', 0.0],
  ];
  for (const [what, text, want] of cases) {
    const r = await rewardWith(text, 0.9);
    assert.equal(r.reward, want, what);
    assert.equal(r.asked.length, 1, `${what}: every response is judged (the verdict of a malformed one only counts for accuracy)`);
    assert.equal(huatuoReward(text, true), want, `${what} (huatuoReward)`);
  }
  assert.equal(huatuoReward(good, false), 0.1);
});

test('the verifier judges the stripped text after "## Final Response\\n\\n", everything up to the end', async () => {
  const text = '## Thinking\n\nhmm\n\n## Final Response\n\n  \u00a0Vitamin C.\n## Final Response\nreally \t\n';
  const r = await rewardWith(text, 0.9);
  assert.equal(r.asked[0].response, 'Vitamin C.\n## Final Response\nreally');
  assert.equal(r.asked[0].reference, 'Vitamin C');
  assert.equal(huatuoFormat(text).finalResponse, 'Vitamin C.\n## Final Response\nreally');
  assert.deepEqual(huatuoFormat('## Final Response: C'), { formatted: false, finalResponse: null });
});

test('pythonStrip strips what Python str.strip() strips, unlike String.prototype.trim', () => {
  assert.equal(pythonStrip('\x1c\x1f\x85 a b \u3000\u2028'), 'a b');
  assert.equal(pythonStrip('\ufeffa\ufeff'), '\ufeffa\ufeff', 'U+FEFF is not whitespace to Python');
  assert.equal(pythonStrip(' \t\n'), '');
  assert.equal(countOccurrences('aaaa', 'aa'), 2, 'non-overlapping, as str.count');
});

test('the reward mapping is defined once: the step kinds default to it', () => {
  assert.deepEqual(HUATUO_REWARD, { correct: 1.0, wrong: 0.1, malformed: 0.0 });
  const base = { policy: 'p', data: 'd', verifier: { type: 'rule' } };
  assert.deepEqual(GrpoParams.parse(base).reward, HUATUO_REWARD);
  assert.deepEqual(PpoParams.parse(base).reward, HUATUO_REWARD);
  assert.equal(rewardFor(true, true, { correct: 2, wrong: -1, malformed: -3 }), 2);
  assert.equal(rewardFor(false, true, { correct: 2, wrong: -1, malformed: -3 }), -3);
  assert.equal(rewardFor(true, false), 0.1);
});
