/**
 * The report of a whole run as one static HTML page: each step's state and relative links to
 * its artifacts and logs, training curves (SFT loss and learning rate per step; RL reward,
 * accuracy, format rate, KL, response length and clip fraction per iteration), and the stage
 * comparison (held-out accuracy per source and stage with bootstrap intervals, the chance
 * level, the paired gains). Charts are Vega-Lite specs rendered to inline SVG in Node by the
 * same renderer as the evaluation report (./report.ts): no scripts, no network. Every text
 * that comes from the run (ids, names, paths, messages) is escaped.
 *
 * What is drawn is given as a plain model; runtime/run-report.ts gathers it from the artifact store.
 */
import type { TopLevelSpec } from 'vega-lite';
import { escapeHtml, svg } from './report.ts';
import { gainVerdict, type StageComparison } from './stages.ts';

export interface ReportLink {
  label: string;
  /** Relative to the report's folder, '/'-separated, not yet URL-encoded. */
  href: string;
}

export interface ReportStep {
  id: string;
  uses: string;
  /** succeeded, cached, failed, cancelled, running, or not run (pending or skipped). */
  state: string;
  attempt?: number;
  finishedAt?: string;
  /** One line: where a cached result came from, a failure's message. */
  note?: string;
  links: ReportLink[];
}

export interface CurveSeries {
  /** The field in the step's files, e.g. `reward_mean`. */
  metric: string;
  /** What the chart calls it. */
  label: string;
  points: { x: number; y: number }[];
}

export interface ReportCurves {
  step: string;
  uses: string;
  /** The x axis: `step` (optimizer steps) or `iteration` (RL iterations). */
  x: string;
  series: CurveSeries[];
}

export interface RunReportModel {
  runId: string;
  pipeline?: string;
  description?: string;
  updatedAt: string;
  steps: ReportStep[];
  curves: ReportCurves[];
  comparison?: StageComparison;
}

/** A chart's id in the page: `chart-` and the parts, anything outside [A-Za-z0-9_-] as '_'. */
export function chartId(...parts: string[]): string {
  return `chart-${parts.join('-').replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

/** One metric against steps or iterations. */
export function curveSpec(c: ReportCurves, s: CurveSeries): TopLevelSpec {
  return {
    title: { text: s.label, subtitle: `${c.step} (${c.uses})` },
    width: 260,
    height: 150,
    data: { values: s.points },
    mark: { type: 'line', point: s.points.length <= 30, color: '#4c78a8' },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: c.x, axis: { tickMinStep: 1 } },
      y: { field: 'y', type: 'quantitative', title: null, scale: { zero: false } },
    },
  };
}

/** Accuracy per stage with its interval, one panel per source, the chance level as a dashed line. */
export function stageAccuracySpec(c: StageComparison): TopLevelSpec {
  const order = c.stages.map((s) => s.stage);
  const values = c.sources.flatMap((src) =>
    src.stages.map((a) => ({ source: src.source, stage: a.stage, accuracy: a.accuracy.estimate, lo: a.accuracy.lo, hi: a.accuracy.hi, chance: src.chance ?? null })));
  const stage = { field: 'stage', type: 'nominal' as const, sort: order, title: null, axis: { labelAngle: 0 } };
  return {
    title: `Held-out accuracy by stage (${Math.round(100 * c.level)}% bootstrap intervals; dashed: chance)`,
    data: { values },
    facet: { column: { field: 'source', type: 'nominal', title: null, sort: c.sources.map((s) => s.source), header: { labelLimit: 220 } } },
    spec: {
      width: Math.max(120, 60 * order.length),
      height: 220,
      layer: [
        {
          mark: { type: 'rule', strokeWidth: 2, color: '#4c78a8' },
          encoding: { x: stage, y: { field: 'lo', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '.0%', title: 'accuracy' } }, y2: { field: 'hi' } },
        },
        {
          mark: { type: 'point', filled: true, size: 70, color: '#4c78a8' },
          encoding: { x: stage, y: { field: 'accuracy', type: 'quantitative' } },
        },
        {
          transform: [{ filter: 'datum.chance != null' }],
          mark: { type: 'rule', color: '#e45756', strokeDash: [6, 4] },
          encoding: { y: { field: 'chance', type: 'quantitative' } },
        },
      ],
    },
  };
}

/** The paired gain per source and pair of stages, with its interval and a line at 0. */
export function stageGainSpec(c: StageComparison): TopLevelSpec {
  const values = c.sources.flatMap((src) =>
    src.gains.map((g) => ({ source: src.source, pair: `${g.to} − ${g.from}`, gain: g.gain.estimate, lo: g.gain.lo, hi: g.gain.hi })));
  const x = { field: 'source', type: 'nominal' as const, sort: c.sources.map((s) => s.source), title: null, axis: { labelAngle: 0, labelLimit: 220 } };
  return {
    title: `Paired gain on the same items (${Math.round(100 * c.level)}% paired bootstrap intervals)`,
    width: Math.max(200, 140 * c.sources.length),
    height: 200,
    layer: [
      {
        data: { values },
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: {
          x, y: { field: 'lo', type: 'quantitative', axis: { format: '+.0%', title: 'gain (accuracy points)' } }, y2: { field: 'hi' },
          color: { field: 'pair', type: 'nominal', title: null },
        },
      },
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: { x, y: { field: 'gain', type: 'quantitative' }, color: { field: 'pair', type: 'nominal', title: null } },
      },
      {
        data: { values: [{ zero: 0 }] },
        mark: { type: 'rule', color: '#888' },
        encoding: { y: { field: 'zero', type: 'quantitative' } },
      },
    ],
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pts = (x: number) => `${x > 0 ? '+' : x < 0 ? '−' : '±'}${Math.abs(100 * x).toFixed(1)}`;
const href = (path: string) => path.split('/').map(encodeURIComponent).join('/');

function linksHtml(links: ReportLink[]): string {
  return links.map((l) => `<a href="${escapeHtml(href(l.href))}">${escapeHtml(l.label)}</a>`).join(' · ');
}

function comparisonTable(c: StageComparison): string {
  // The last column says what each gain means; without gains there is none.
  const words = c.sources.some((s) => s.gains.length);
  const rows = c.sources.flatMap((s) => [
    ...s.stages.map((a, i) =>
      `<tr><td>${i === 0 ? escapeHtml(s.source) : ''}</td><td>${i === 0 && s.chance !== undefined ? pct(s.chance) : ''}</td>` +
      `<td>${escapeHtml(a.stage)} (${escapeHtml(a.label)})</td><td>${a.accuracy.n}</td><td>${pct(a.accuracy.estimate)}</td><td>[${pct(a.accuracy.lo)}, ${pct(a.accuracy.hi)}]</td>${words ? '<td></td>' : ''}</tr>`),
    ...s.gains.map((g) =>
      `<tr class="gain"><td></td><td></td><td>gain of ${escapeHtml(g.to)} over ${escapeHtml(g.from)} (paired)</td><td>${g.gain.n}</td>` +
      `<td>${pts(g.gain.estimate)} pts</td><td>[${pts(g.gain.lo)}, ${pts(g.gain.hi)}]</td><td>${escapeHtml(gainVerdict(g))}</td></tr>`),
  ]);
  return `<table id="stage-table"><thead><tr><th>source</th><th>chance</th><th>stage</th><th>items</th><th>accuracy</th><th>${Math.round(100 * c.level)}% interval</th>${words ? '<th>what the gain says</th>' : ''}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

/** The page. */
export async function renderRunReportHtml(m: RunReportModel): Promise<string> {
  const figures: string[] = [];
  for (const c of m.curves) {
    for (const s of c.series) {
      if (!s.points.length) continue;
      figures.push(`<figure class="chart" id="${escapeHtml(chartId(c.step, s.metric))}">${await svg(curveSpec(c, s))}</figure>`);
    }
  }
  let comparison = '<p>No evaluation has finished yet.</p>';
  const c = m.comparison;
  if (c && c.sources.length) {
    const acc = `<figure class="chart" id="chart-stage-accuracy">${await svg(stageAccuracySpec(c))}</figure>`;
    const hasGains = c.sources.some((s) => s.gains.length);
    const gains = hasGains ? `<figure class="chart" id="chart-stage-gain">${await svg(stageGainSpec(c))}</figure>` : '';
    comparison = `<p>Accuracy of each evaluated stage on the held-out items, with a ${Math.round(100 * c.level)}% percentile bootstrap interval
(${c.resamples} resamples of the items, seeded); the gain of one stage over another is paired: the same items resampled with both their scores.
Chance is 1 / number of options. An interval that includes 0 means the gain is not significant at this size.</p>
<div class="charts">${acc}${gains}</div>
${comparisonTable(c)}`;
  }
  const steps = m.steps.map((s) =>
    `<tr class="state-${escapeHtml(s.state.replace(/[^a-z]/g, '-'))}"><td>${escapeHtml(s.id)}</td><td>${escapeHtml(s.uses)}</td><td>${escapeHtml(s.state)}</td>` +
    `<td>${s.attempt ?? ''}</td><td>${escapeHtml(s.finishedAt ?? '')}</td><td>${linksHtml(s.links)}${s.note ? `<div class="note">${escapeHtml(s.note)}</div>` : ''}</td></tr>`).join('\n');
  const title = `Run ${m.runId}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}figure{margin:0}.note{color:#555;font-size:90%}.state-failed td:nth-child(3){color:#b00020;font-weight:600}.state-succeeded td:nth-child(3),.state-cached td:nth-child(3){color:#2e7d32}tr.gain td{background:#f6f6f6}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>${m.pipeline ? `Pipeline <strong>${escapeHtml(m.pipeline)}</strong>. ` : ''}${m.description ? escapeHtml(m.description) : ''}</p>
<p>Updated ${escapeHtml(m.updatedAt)} (whenever a step finishes).</p>
<h2 id="comparison">Stage comparison</h2>
${comparison}
<h2 id="curves">Training curves</h2>
${figures.length ? `<div class="charts">${figures.join('\n')}</div>` : '<p>No training step has written metrics yet.</p>'}
<h2 id="steps">Steps</h2>
<table id="steps-table"><thead><tr><th>step</th><th>kind</th><th>state</th><th>attempt</th><th>finished</th><th>artifacts and logs</th></tr></thead>
<tbody>
${steps}
</tbody></table>
</body></html>
`;
}
