// Earlier reports for the chart over time: run series from run ids, `auto` in a store laid
// out on disk, and reports that are unreadable or finished later left out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadReports, seriesOf, seriesReportFiles } from '../../evaluation/history.ts';
import { newRunId } from '../../runtime/runs.ts';

test('a run series is the run id without its time stamp', () => {
  assert.equal(seriesOf('nightly-2026-11-29T02:00:00Z'), 'scheduled:nightly');
  assert.equal(seriesOf('nightly-eval-2026-11-29T02:00:00Z'), 'scheduled:nightly-eval');
  assert.equal(seriesOf(newRunId('nightly-eval', new Date('2026-11-29T21:00:00Z'))), 'by hand:nightly-eval');
  // A schedule and a pipeline of the same name are different series.
  assert.notEqual(seriesOf('x-2026-11-29T02:00:00Z'), seriesOf(newRunId('x')));
  assert.equal(seriesOf('my-own-run-id'), undefined);
});

const report = (finished_at: string) => ({ accuracy: { sources: { a: { accuracy: 0.5, n: 2 } }, average: 0.5 }, timing: { finished_at } });

test('auto finds the same step of the other runs of the series, and only those', () => {
  const runs = join(mkdtempSync(join(tmpdir(), 'eval-history-')), 'runs');
  const put = (runId: string, stepId: string, body: unknown = report('2026-11-01T00:00:00Z')) => {
    const dir = join(runs, runId, 'steps', stepId);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'report.json'), typeof body === 'string' ? body : JSON.stringify(body));
    return dir;
  };
  const a1 = put('nightly-2026-11-27T02:00:00Z', 'eval');
  put('nightly-2026-11-28T02:00:00Z', 'eval');
  put('nightly-2026-11-28T02:00:00Z', 'other-step');
  put('nightly-b-2026-11-28T02:00:00Z', 'eval');
  put('nightly-20261128-020000-abcd', 'eval');
  mkdirSync(join(runs, 'nightly-2026-11-26T02:00:00Z', 'steps', 'eval'), { recursive: true }); // failed before its report
  const own = put('nightly-2026-11-29T02:00:00Z', 'eval');

  const found = seriesReportFiles(own, 'nightly-2026-11-29T02:00:00Z', 'eval');
  assert.deepEqual(found, [join(a1, 'report.json'), join(runs, 'nightly-2026-11-28T02:00:00Z', 'steps', 'eval', 'report.json')]);
  // Outside the store's layout (a folder that is not runs/<runId>/steps/<stepId>): nothing.
  assert.deepEqual(seriesReportFiles(own, 'another-2026-11-29T02:00:00Z', 'eval'), []);
  assert.deepEqual(seriesReportFiles(mkdtempSync(join(tmpdir(), 'eval-out-')), 'nightly-2026-11-29T02:00:00Z', 'eval'), []);
});

test('loadReports keeps earlier readable reports and warns about the others', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eval-history-'));
  const file = (name: string, body: string) => (writeFileSync(join(dir, name), body), join(dir, name));
  const files = [
    file('old.json', JSON.stringify(report('2026-11-01T00:00:00Z'))),
    file('later.json', JSON.stringify(report('2026-12-01T00:00:00Z'))),
    file('torn.json', '{"accuracy": '),
    file('other.json', '{"hello": 1}'),
    file('own.json', JSON.stringify(report('2026-11-02T00:00:00Z'))),
  ];
  const warnings: string[] = [];
  const got = loadReports(files, join(dir, 'own.json'), '2026-11-29T00:00:00Z', (m) => warnings.push(m));
  assert.deepEqual(got.map((r) => r.timing.finished_at), ['2026-11-01T00:00:00Z']);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /torn\.json/);
  assert.match(warnings[1], /other\.json: not an evaluation report/);
});
