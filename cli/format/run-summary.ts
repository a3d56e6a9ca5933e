/**
 * What `doctor-agent run` prints at the end and `status` prints of a run: the path of the
 * run's report.html and, once the run is over, the stage comparison (held-out accuracy per
 * stage and source with bootstrap intervals, the paired gain of RL over SFT, the chance level).
 * Read from the run's folder in the artifact store (runtime/run-report.ts).
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatStageComparison } from '../../evaluation/stages.ts';
import { runStageComparison } from '../../runtime/run-report.ts';
import { ArtifactStore } from '../../runtime/store.ts';

/**
 * `runDir`: where the worker said the run's folder is (it may have another store than this
 * command's); else the run's folder in `store`.
 */
export function runSummary(store: ArtifactStore, runId: string, runDir: string | undefined, o: { comparison: boolean }): string {
  const own = runDir && existsSync(runDir) ? new ArtifactStore(dirname(dirname(runDir))) : store;
  const lines: string[] = [];
  if (o.comparison && existsSync(own.runDir(runId))) {
    try {
      const c = runStageComparison(own, runId);
      if (c) lines.push('', formatStageComparison(c));
    } catch (err) {
      lines.push('', `(no stage comparison: ${(err as Error).message})`);
    }
  }
  const report = own.reportFile(runId);
  if (existsSync(report)) lines.push('', `report: ${report}`);
  return lines.join('\n');
}
