/** `doctor-agent status RUN [--json]`: where a run stands, step by step. */
import type { Command } from 'commander';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show a run: its status, each step (state, attempt, progress, metrics), its report.html and, once finished, the stage comparison')
    .argument('<run>', 'run id (as printed by run/start, or from `doctor-agent list`)')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const [{ runLink, withTemporal }, { runView }, { formatRunView }, { runSummary }] =
        await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts'), import('../format/run-view.ts'), import('../format/run-summary.ts')]);
      await withTemporal(async (t, store) => {
        const v = await runView(t.client, id);
        // A finished run also shows its stage comparison; any run, its report.html once a step has finished.
        const summary = () => runSummary(store, id, v.progress?.runDir ?? v.result?.runDir, { comparison: v.execution !== 'RUNNING' });
        process.stdout.write((o.json ? JSON.stringify(v, null, 2) : formatRunView(v, runLink(t, id)) + summary()) + '\n');
      });
    });
}
