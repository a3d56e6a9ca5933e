/**
 * Earlier evaluation reports for the accuracy-over-time chart. The eval.sglang step's
 * `history` is either a glob of report.json files or `auto`: the report.json of the same
 * step id in the other runs of the same series in the artifact store.
 *
 * A series is a run id without its time stamp. A run started by a schedule is named
 * `<schedule>-<YYYY-MM-DDTHH:MM:SSZ>` (Temporal appends the time it was due), so its series
 * is its schedule; a run started by hand is `<pipeline>-<YYYYMMDD-HHMMSS>-<hex>`
 * (runtime/runs.ts), so its series is that pipeline's runs started by hand. A run with an
 * id of its own (`--run-id`) has no series, and `auto` finds nothing for it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import fg from 'fast-glob';
import { readJsonFile } from '../common/fs.ts';
import { REPORT_FILE, type EvalReport } from './client.ts';

const STAMPS: [kind: string, re: RegExp][] = [
  ['scheduled', /^(.+)-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/],
  ['by hand', /^(.+)-\d{8}-\d{6}-[0-9a-f]+$/],
];

/** `scheduled:<schedule>` or `by hand:<pipeline>`; undefined for an id with no time stamp. */
export function seriesOf(runId: string): string | undefined {
  for (const [kind, re] of STAMPS) {
    const m = re.exec(runId);
    if (m) return `${kind}:${m[1]}`;
  }
  return undefined;
}

/**
 * report.json files of step `stepId` in the other runs of `runId`'s series, found next to
 * `outDir` (`<store>/runs/<runId>/steps/<stepId>`, see runtime/store.ts). Empty when
 * `outDir` is not laid out that way or the run has no series.
 */
export function seriesReportFiles(outDir: string, runId: string, stepId: string): string[] {
  const stepDir = resolve(outDir);
  const runDir = dirname(dirname(stepDir));
  if (basename(stepDir) !== stepId || basename(dirname(stepDir)) !== 'steps' || basename(runDir) !== runId) return [];
  const series = seriesOf(runId);
  if (!series) return [];
  const runsDir = dirname(runDir);
  return readdirSync(runsDir)
    .filter((id) => id !== runId && seriesOf(id) === series)
    .map((id) => join(runsDir, id, 'steps', stepId, REPORT_FILE))
    .filter((file) => existsSync(file))
    .sort();
}

/** Report files matching a glob, sorted. */
export function globReportFiles(pattern: string): string[] {
  return fg.sync(pattern, { absolute: true, onlyFiles: true }).sort();
}

/**
 * The reports in `files` that finished before `before` (an ISO time), leaving out `own`;
 * a file that is not a readable report is skipped with a warning through `warn`.
 */
export function loadReports(files: string[], own: string, before: string, warn: (message: string) => void): EvalReport[] {
  const out: EvalReport[] = [];
  for (const file of files) {
    if (resolve(file) === resolve(own)) continue;
    try {
      const r = readJsonFile<EvalReport>(file);
      if (!r?.accuracy?.sources || typeof r.timing?.finished_at !== 'string') warn(`${file}: not an evaluation report, left out of the chart`);
      else if (r.timing.finished_at < before) out.push(r);
    } catch (err) {
      warn(`${(err as Error).message}; left out of the chart`);
    }
  }
  return out;
}
