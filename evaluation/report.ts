/**
 * The HTML evaluation report: a static page with inline SVG charts rendered in Node
 * by Vega-Lite + Vega's headless SVG renderer (no browser, no network, no scripts in
 * the page). Accuracy per source as bars; with several reports (e.g. nightly runs) a
 * line chart of accuracy over time; a table with both scoring policies.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { EvalReport } from './client.ts';

/** A Vega-Lite spec rendered to SVG text by Vega's headless renderer (no browser, no DOM). */
export async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Text made safe for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Bars of accuracy per source, with the average as a dashed rule. */
export function accuracyBarsSpec(report: EvalReport): TopLevelSpec {
  const values = Object.entries(report.accuracy.sources).map(([source, s]) => ({ source, accuracy: s.accuracy, n: s.n }));
  return {
    title: `Accuracy per source (average ${pct(report.accuracy.average)})`,
    width: Math.max(240, 70 * values.length),
    height: 240,
    layer: [
      {
        data: { values },
        mark: { type: 'bar', color: '#4c78a8' },
        encoding: {
          x: { field: 'source', type: 'nominal', sort: null, axis: { labelAngle: -30, title: null } },
          y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'accuracy' } },
        },
      },
      {
        data: { values: [{ average: report.accuracy.average }] },
        mark: { type: 'rule', color: '#e45756', strokeDash: [6, 4] },
        encoding: { y: { field: 'average', type: 'quantitative' } },
      },
    ],
  };
}

/** Lines of accuracy per source and the average over the reports' finishing times. */
export function accuracyOverTimeSpec(reports: EvalReport[]): TopLevelSpec {
  const values = reports.flatMap((r) => [
    ...Object.entries(r.accuracy.sources).map(([source, s]) => ({ time: r.timing.finished_at, series: source, accuracy: s.accuracy })),
    { time: r.timing.finished_at, series: 'average', accuracy: r.accuracy.average },
  ]);
  return {
    title: 'Accuracy over time',
    width: 520,
    height: 240,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'time', type: 'temporal', axis: { title: null, format: '%b %d %H:%M', tickCount: 6, labelAngle: -30 } },
      y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%' } },
      color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 400 } },
    },
  };
}

/** A warning paragraph when items failed: how many, why, and how they are counted. */
function failedNote(report: EvalReport): string {
  const failed = report.counts.failed ?? 0;
  if (!failed) return '<p id="failed">No item failed: every accuracy is over answered items.</p>';
  const tooLong = report.counts.prompt_too_long ?? 0;
  return `<p id="failed" style="color:#b00020"><strong>${failed} of ${report.counts.items} item(s) failed</strong> ` +
    `(${tooLong} with a prompt longer than the model's context, ${failed - tooLong} refused for another reason): ` +
    'they count as not answered, so the accuracies include them in the denominator; "accuracy of answered" leaves them out. ' +
    'Their rows in results.jsonl have <code>error</code>.</p>';
}

/**
 * Renders the report page. `history` holds earlier reports (any order); with the
 * current one they make the accuracy-over-time chart when there are at least two.
 */
export async function renderReportHtml(report: EvalReport, history: EvalReport[] = []): Promise<string> {
  const all = [...history, report].sort((a, b) => a.timing.finished_at.localeCompare(b.timing.finished_at));
  const bars = await svg(accuracyBarsSpec(report));
  const lines = all.length >= 2 ? await svg(accuracyOverTimeSpec(all)) : '';
  const rows = Object.entries(report.accuracy.sources)
    .map(([name, s]) => `<tr><td>${escapeHtml(name)}</td><td>${s.n}</td><td>${s.failed ?? 0}</td><td>${s.prompt_too_long ?? 0}</td>` +
      `<td>${pct(s.accuracy_last)}</td><td>${pct(s.accuracy_first)}</td><td>${s.accuracy_answered === undefined ? '-' : pct(s.accuracy_answered)}</td></tr>`)
    .join('\n');
  const a = report.accuracy;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation: ${escapeHtml(report.model)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:2em}dt{font-weight:600}</style>
</head><body>
<h1>Evaluation of ${escapeHtml(report.model)}</h1>
<p>Average accuracy over ${Object.keys(a.sources).length} source(s): <strong>${pct(a.average)}</strong>
(scoring the ${a.policy} answer; ${pct(a.policy === 'last' ? a.average_first : a.average_last)} scoring the ${a.policy === 'last' ? 'first' : 'last'}).</p>
<div class="charts"><figure id="accuracy-per-source">${bars}</figure>${lines ? `<figure id="accuracy-over-time">${lines}</figure>` : ''}</div>
${failedNote(report)}
<table><thead><tr><th>source</th><th>items</th><th>failed</th><th>prompt too long</th><th>accuracy (last answer)</th><th>accuracy (first answer)</th><th>accuracy of answered (${a.policy})</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<dl>
<dt>data</dt><dd>${escapeHtml(report.data)}</dd>
<dt>server</dt><dd>${escapeHtml(report.base_url)}</dd>
<dt>prompt</dt><dd>${report.prompt}</dd>
<dt>sampling</dt><dd>temperature ${report.sampling.temperature}, top-p ${report.sampling.top_p}, max tokens ${report.sampling.max_tokens}, seed ${report.sampling.seed}</dd>
<dt>items</dt><dd>${report.counts.items} (${report.counts.asked} asked in this run, ${report.counts.resumed} resumed, ${report.counts.failed ?? 0} failed, ${report.counts.no_answer} answered without a letter)</dd>
<dt>time</dt><dd>${report.timing.started_at} to ${report.timing.finished_at} (${report.timing.wall_s} s), ${report.tokens.completion_per_s} completion tokens/s</dd>
</dl>
</body></html>
`;
}
