/**
 * Nightly evaluation as a user runs it, on a real dev server with an in-process worker:
 * `doctor-agent schedule create` of pipelines/nightly-eval.yaml on a tiny random checkpoint
 * and a tiny evaluation file, two nights triggered by hand, the second night's report
 * charting accuracy over both, `schedule describe` listing the runs, `schedule delete`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvalReport } from '../../evaluation/client.ts';
import { readResults } from '../../evaluation/results.ts';
import { deleteSchedule, listSchedules, scheduleRuns, triggerSchedule } from '../../runtime/schedules.ts';
import { PROJECT_ROOT } from '../../runtime/temporal.ts';
import type { PipelineResult } from '../../workflows/types.ts';
import { tinyModel } from '../evaluation/tiny-model.ts';
import { cliFor, startTestServer, startWorker, waitFor } from './helpers.ts';

const PIPELINE = join(PROJECT_ROOT, 'pipelines', 'nightly-eval.yaml');

/** Two sources of three short MCQs each; the nightly evaluates the first two of each. */
const OPTIONS = { A: 'aspirin', B: 'insulin', C: 'heparin', D: 'warfarin' };
const mcq = (question: string, answer_idx: keyof typeof OPTIONS) => ({ question, options: OPTIONS, answer_idx, answer: OPTIONS[answer_idx] });
const EVAL = {
  cardio: [mcq('Which drug is an antiplatelet?', 'A'), mcq('Which drug lowers blood glucose?', 'B'), mcq('Which drug is given IV for a clot?', 'C')],
  endo: [mcq('Which hormone does the pancreas make?', 'B'), mcq('Which drug is a vitamin K antagonist?', 'D'), mcq('Which drug is an NSAID?', 'A')],
};
const LIMIT = 2;

/** The x positions of the points drawn in the report's accuracy-over-time chart. */
function chartPointTimes(html: string): Set<string> {
  const figure = /<figure id="accuracy-over-time">([\s\S]*?)<\/figure>/.exec(html)?.[1];
  assert.ok(figure, 'no accuracy-over-time chart in report.html');
  const symbols = /<g class="mark-symbol role-mark[^"]*"[^>]*>([\s\S]*?)<\/g>/.exec(figure)?.[1] ?? '';
  const xs = [...symbols.matchAll(/transform="translate\(([-\d.]+),/g)].map((m) => m[1]);
  // One point per series (each source and the average) per night.
  assert.equal(xs.length, 2 * (Object.keys(EVAL).length + 1), `points drawn: ${xs.length}`);
  return new Set(xs);
}

test('nightly evaluation on a schedule', async (t) => {
  const s = await startTestServer(t);
  await startWorker(t, s);
  const cli = cliFor(s);
  const checkpoint = await tinyModel(5);
  const data = join(s.store.root, 'tiny-eval.json');
  writeFileSync(data, JSON.stringify(EVAL));

  const created = await cli(
    'schedule', 'create', 'nightly', '--pipeline', PIPELINE, '--cron', '0 2 * * *', '--timezone', 'Europe/Paris',
    '--set', `checkpoint=${checkpoint}`, '--set', `eval_data=${data}`, '--set', `limit_per_source=${LIMIT}`,
  );
  assert.equal(created.exitCode, 0, created.stderr);
  t.after(() => deleteSchedule(s.client, 'nightly').catch(() => {}));
  assert.match(created.stdout, /schedule nightly: nightly-eval at "0 2 \* \* \*" \(Europe\/Paris\)/);

  // Two nights, one after the other (the second must see the first's report).
  const nights: { id: string; result: PipelineResult }[] = [];
  for (let n = 1; n <= 2; n++) {
    await triggerSchedule(s.client, 'nightly');
    const id = await waitFor(`night ${n} to start`, async () => (await scheduleRuns(s.client, 'nightly'))[n - 1]);
    const result: PipelineResult = await s.client.workflow.getHandle(id).result();
    assert.equal(result.status, 'succeeded');
    // Not taken from the step cache, though the checkpoint and the data are the same both nights.
    assert.equal(result.steps.eval.state, 'succeeded');
    nights.push({ id, result });
  }
  assert.match(nights[0].id, /^nightly-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.notEqual(nights[0].id, nights[1].id);

  const stepDir = (id: string) => s.store.stepDir(id, 'eval');
  const reports = nights.map(({ id }) => JSON.parse(readFileSync(join(stepDir(id), 'report.json'), 'utf8')) as EvalReport);
  // The second night asked every item again rather than reusing the first night's answers.
  assert.equal(reports[1].counts.asked, Object.keys(EVAL).length * LIMIT);
  assert.equal(reports[1].counts.resumed, 0);

  // Accuracy per source in report.json, as results.jsonl scores it.
  const rows = readResults(join(stepDir(nights[1].id), 'results.jsonl'));
  assert.deepEqual(Object.keys(reports[1].accuracy.sources).sort(), Object.keys(EVAL).sort());
  for (const [source, acc] of Object.entries(reports[1].accuracy.sources)) {
    const mine = rows.filter((r) => r.source === source);
    assert.equal(acc.n, LIMIT);
    assert.equal(acc.accuracy, mine.filter((r) => r.correct).length / LIMIT);
  }
  assert.equal(nights[1].result.steps.eval.outputs?.accuracy, reports[1].accuracy.average);

  // Night 1 has nothing to compare with; night 2 charts both nights.
  const html = nights.map(({ result }) => readFileSync(result.steps.eval.outputs?.report as string, 'utf8'));
  assert.ok(!html[0].includes('id="accuracy-over-time"'), 'night 1 drew a chart over time');
  assert.equal(chartPointTimes(html[1]).size, 2, 'the chart over time does not show two nights');

  const described = await cli('schedule', 'describe', 'nightly');
  assert.equal(described.exitCode, 0, described.stderr);
  for (const { id } of nights) assert.match(described.stdout, new RegExp(`ran: \\S+  ${id}$`, 'm'));
  assert.match(described.stdout, /pipeline: nightly-eval/);
  assert.match(described.stdout, /cron: "0 2 \* \* \*" in Europe\/Paris/);

  const deleted = await cli('schedule', 'delete', 'nightly');
  assert.equal(deleted.exitCode, 0, deleted.stderr);
  assert.ok(!(await listSchedules(s.client)).some((x) => x.scheduleId === 'nightly'), 'the schedule is still listed');
});
