// The stage comparison: scores read back from eval step folders as report.json counts them,
// accuracies with bootstrap intervals, the paired gain of RL over SFT, the chance level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareStages, formatStageComparison, loadStageScores, optionsInPrompt, scoresOf } from '../../evaluation/stages.ts';
import type { ResultRow } from '../../evaluation/results.ts';
import { FIXTURE_SOURCES, writeFixtureRun } from '../helpers/run-fixture.ts';

const row = (id: number, first: boolean, last: boolean, more: Partial<ResultRow> = {}): ResultRow => ({
  source: 's', id: `s/${id}`, index: id, prompt: 'p', output: 'x', first: null, last: null, rule: null, gold: 'A',
  correct_first: first, correct_last: last, correct: last, prompt_tokens: 1, completion_tokens: 1, seed: 0, ...more,
});

test('scores follow the report: max takes the better answer per source, failed items count 0, empty outputs are dropped', () => {
  const rows = [row(0, true, false), row(1, true, false), row(2, false, true), row(3, true, true, { error: 'rejected' }), row(4, true, true, { output: '' })];
  // First answers: 2 correct of the counted, last: 1 → max uses the first answers.
  assert.deepEqual([...scoresOf(rows, 'max', true).get('s')!], [['s/0', 1], ['s/1', 1], ['s/2', 0], ['s/3', 0]]);
  assert.deepEqual([...scoresOf(rows, 'last', true).get('s')!], [['s/0', 0], ['s/1', 0], ['s/2', 1], ['s/3', 0]]);
  // A scorer that keeps empty outputs counts the item.
  assert.equal(scoresOf(rows, 'last', false).get('s')!.get('s/4'), 1);
});

test('options are counted from the prompt when the evaluation file is gone', () => {
  assert.equal(optionsInPrompt('<|im_start|>user\nWhich?\nA. one\nB. two\nC. three\nD. four<|im_end|>'), 4);
  assert.equal(optionsInPrompt('no options here'), 0);
});

test('SFT and RL on the same items: intervals, paired gain, chance, and honest words', () => {
  const root = mkdtempSync(join(tmpdir(), 'stages-'));
  try {
    const store = writeFixtureRun(root, 'r1');
    const sft = loadStageScores(store.stepPath('r1', 'eval_sft'), 'SFT', 'sft', 'eval_sft')!;
    const rl = loadStageScores(store.stepPath('r1', 'eval'), 'RL', 'grpo', 'eval')!;
    const c = compareStages([sft, rl], [{ from: 'SFT', to: 'RL' }]);
    assert.equal(c.resamples, 2000);
    assert.equal(c.level, 0.95);
    const [a, b] = c.sources;
    assert.equal(a.source, FIXTURE_SOURCES.a);
    assert.equal(a.chance, 1 / 5);
    assert.equal(b.chance, 1 / 4);
    assert.deepEqual(a.stages.map((s) => [s.stage, s.accuracy.estimate, s.accuracy.n]), [['SFT', 0.25, 4], ['RL', 0.5, 4]]);
    // SFT 1,0,0,0: Binomial(4, 1/4)/4 → [0, 0.75].
    assert.deepEqual([a.stages[0].accuracy.lo, a.stages[0].accuracy.hi], [0, 0.75]);
    // RL gains one item of four: the differences 0,1,0,0 → +0.25 in [0, 0.75], which includes 0.
    assert.equal(a.gains.length, 1);
    assert.deepEqual([a.gains[0].gain.estimate, a.gains[0].gain.lo, a.gains[0].gain.hi], [0.25, 0, 0.75]);
    assert.equal(a.gains[0].significant, false);
    // Every item gained: +1 in [1, 1].
    assert.deepEqual([b.gains[0].gain.estimate, b.gains[0].gain.lo, b.gains[0].gain.hi], [1, 1, 1]);
    assert.equal(b.gains[0].significant, true);

    const text = formatStageComparison(c);
    assert.match(text, /95% bootstrap intervals over items, 2000 resamples/);
    assert.match(text, /src_a: 4 items, chance 20\.0%/);
    assert.match(text, /SFT \(sft\)\s+25\.0%\s+\[0\.0%, 75\.0%\]/);
    assert.match(text, /gain of RL over SFT: \+25\.0 points \[±0\.0, \+75\.0\] \(paired, 4 items\); the interval includes 0: the gain is not significant at this size \(4 items\)/);
    assert.match(text, /gain of RL over SFT: \+100\.0 points \[\+100\.0, \+100\.0\] \(paired, 4 items\); RL is better than SFT on these items/);
    // Seeded: the same comparison again.
    assert.deepEqual(compareStages([sft, rl], [{ from: 'SFT', to: 'RL' }]), c);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('identical stages: gain 0 in [0, 0], not significant', () => {
  const root = mkdtempSync(join(tmpdir(), 'stages-'));
  try {
    const store = writeFixtureRun(root, 'r1');
    const one = loadStageScores(store.stepPath('r1', 'eval'), 'A', 'grpo', 'eval')!;
    const two = loadStageScores(store.stepPath('r1', 'eval'), 'B', 'grpo', 'eval')!;
    const c = compareStages([one, two], [{ from: 'A', to: 'B' }]);
    for (const s of c.sources) {
      assert.deepEqual([s.gains[0].gain.estimate, s.gains[0].gain.lo, s.gains[0].gain.hi, s.gains[0].significant], [0, 0, 0, false]);
    }
    assert.equal(loadStageScores(join(root, 'nowhere'), 'X', 'x', 'x'), undefined, 'a folder without results has no scores yet');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the same answers in another order of results.jsonl (concurrent answers finish in any order) give the same intervals', () => {
  const outcomes = Array.from({ length: 40 }, (_, i) => [(i * 7) % 3 === 0, (i * 5) % 4 !== 0] as const);
  const stage = (name: string, pick: 0 | 1, order: number[]) => ({
    stage: name, label: name.toLowerCase(), step: name.toLowerCase(),
    scores: scoresOf(order.map((i) => row(i, outcomes[i][pick], outcomes[i][pick])), 'last', true),
    options: new Map<string, number>(),
  });
  const forward = Array.from({ length: 40 }, (_, i) => i);
  const shuffled = forward.map((i) => (i * 17) % 40);
  const a = compareStages([stage('SFT', 0, forward), stage('RL', 1, forward)], [{ from: 'SFT', to: 'RL' }]);
  const b = compareStages([stage('SFT', 0, shuffled), stage('RL', 1, shuffled)], [{ from: 'SFT', to: 'RL' }]);
  assert.deepEqual(b, a);
  // The two files do list the items in different orders (resampling scores in file order gave other intervals).
  assert.notDeepEqual(shuffled, forward);
});
