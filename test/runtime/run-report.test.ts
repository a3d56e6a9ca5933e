// The run's report.html gathered from a run folder: curves from the files the steps write (what
// exists, nothing else), the stage comparison, relative links that resolve, data escaped, a
// cached step read from the run that made it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gatherRunReport, runStageComparison, stepCurves, writeRunReport, writeStepOutcome } from '../../runtime/run-report.ts';
import { FIXTURE_SOURCES, writeFixtureRun } from '../helpers/run-fixture.ts';

function withRoot(fn: (root: string) => Promise<void> | void) {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), 'run-report-'));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

test('curves: SFT loss and learning rate per step, RL metrics per iteration, only those present', withRoot((root) => {
  const store = writeFixtureRun(root, 'r1');
  const m = gatherRunReport(store, 'r1');
  assert.deepEqual(m.curves.map((c) => [c.step, c.x, c.series.map((s) => s.metric)]), [
    ['sft', 'step', ['loss', 'lr']],
    ['grpo', 'iteration', ['reward_mean', 'accuracy', 'format_rate', 'kl', 'response_length', 'clip_frac']],
  ]);
  assert.deepEqual(m.curves[1].series[0].points, [{ x: 1, y: 0.1 }, { x: 2, y: 0.2 }, { x: 3, y: 0.30000000000000004 }]);
  // TRL's SFT names the learning rate learning_rate; an RL run without clip fraction or KL has no such charts.
  const dir = store.stepDir('r1', 'trl');
  writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"values":{"loss":2,"learning_rate":0.1}}\n{"step":2,"values":{"loss":1,"learning_rate":0.2}}\n{"torn');
  assert.deepEqual(stepCurves(dir, 'trl', 'train.sft')!.series.map((s) => [s.metric, s.label, s.points.length]), [['loss', 'SFT loss', 2], ['learning_rate', 'learning rate', 2]]);
  writeFileSync(join(dir, 'iterations.jsonl'), '{"iteration":1,"reward_mean":0.5,"accuracy":0.25}\n');
  assert.deepEqual(stepCurves(dir, 'trl', 'rl.ppo')!.series.map((s) => s.metric), ['reward_mean', 'accuracy']);
  assert.equal(stepCurves(dir, 'trl', 'eval.sglang'), undefined, 'not a training step');
}));

test('the stage comparison pairs RL with SFT evaluated on the same data', withRoot((root) => {
  const store = writeFixtureRun(root, 'r1');
  const c = runStageComparison(store, 'r1')!;
  assert.deepEqual(c.stages, [{ stage: 'SFT', label: 'sft', step: 'eval_sft' }, { stage: 'RL', label: 'grpo', step: 'eval' }]);
  assert.deepEqual(c.sources.map((s) => s.gains.map((g) => [g.from, g.to, g.gain.estimate])), [[['SFT', 'RL', 0.25]], [['SFT', 'RL', 1]]]);
  // An evaluation that failed is left out; then there is nothing to pair.
  writeStepOutcome(store, 'r1', { step: 'eval_sft', state: 'failed', attempt: 1, finished_at: '2026-01-01T00:00:00Z', error: 'boom' });
  assert.deepEqual(runStageComparison(store, 'r1')!.stages.map((s) => s.stage), ['RL']);
}));

test('report.html: every chart as inline SVG, no scripts, data escaped, relative links that resolve', withRoot(async (root) => {
  const store = writeFixtureRun(root, 'r1');
  const file = await writeRunReport(store, 'r1');
  assert.equal(file, join(store.runDir('r1'), 'report.html'));
  const html = readFileSync(file, 'utf8');
  for (const id of ['chart-stage-accuracy', 'chart-stage-gain', 'chart-sft-loss', 'chart-sft-lr', 'chart-grpo-reward_mean', 'chart-grpo-accuracy',
    'chart-grpo-format_rate', 'chart-grpo-kl', 'chart-grpo-response_length', 'chart-grpo-clip_frac']) {
    assert.match(html, new RegExp(`<figure class="chart" id="${id}"><svg`), id);
  }
  assert.doesNotMatch(html, /<script/i);
  // The source name and the description come from data: escaped in the HTML, and as text in the SVG.
  assert.doesNotMatch(html, /<b>/);
  assert.ok(html.includes('src &lt;b&gt;&amp;&quot;c&quot;'), 'source escaped in the table');
  assert.ok(html.includes('a fixture &lt;run&gt; &amp; its steps'));
  assert.match(html, /not significant at this size \(4 items\)/);
  assert.ok(html.includes(FIXTURE_SOURCES.a));
  // Links: relative, and each names a file or folder that exists.
  const links = [...html.matchAll(/href="([^"]+)"/g)].map((m) => decodeURIComponent(m[1].replaceAll('&amp;', '&')));
  assert.ok(links.includes('steps/sft/metrics.jsonl') && links.includes('steps/grpo/iterations.jsonl') && links.includes('steps/eval/results.jsonl'), links.join(' '));
  assert.ok(links.includes('steps/eval/step.log') && links.includes('steps/eval/report.html') && links.includes('steps/sft/checkpoint/'), links.join(' '));
  for (const l of links) {
    assert.ok(!l.startsWith('/') && !/^[a-z]+:/i.test(l), `relative: ${l}`);
    assert.ok(existsSync(resolve(dirname(file), l)), `resolves: ${l}`);
  }
}));

test('a cached step is shown from the run that made it', withRoot(async (root) => {
  const store = writeFixtureRun(root, 'first');
  writeFixtureRun(root, 'second');
  // In the second run SFT came from the cache: its folder there is empty.
  rmSync(store.stepPath('second', 'sft'), { recursive: true });
  writeStepOutcome(store, 'second', { step: 'sft', state: 'cached', attempt: 1, finished_at: '2026-01-01T00:00:00Z', cached_from: { run: 'first', step: 'sft' }, outputs: {} });
  const m = gatherRunReport(store, 'second');
  const sft = m.steps.find((s) => s.id === 'sft')!;
  assert.equal(sft.state, 'cached');
  assert.equal(sft.note, 'from the step cache: step sft of run first');
  assert.ok(sft.links.some((l) => l.href === '../first/steps/sft/metrics.jsonl'), JSON.stringify(sft.links));
  assert.deepEqual(m.curves.find((c) => c.step === 'sft')!.series.map((s) => s.metric), ['loss', 'lr']);
  // A step with neither an outcome nor a folder has not run.
  rmSync(store.outcomeFile('second', 'kb'));
  rmSync(store.stepPath('second', 'kb'), { recursive: true });
  assert.equal(gatherRunReport(store, 'second').steps.find((s) => s.id === 'kb')!.state, 'not run');
}));
