/** `doctor-agent status RUN [--json]`: where a run stands, step by step. */
import type { Command } from 'commander';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show a run: its status and each step (state, attempt, progress, metrics)')
    .argument('<run>', 'run id (as printed by run/start, or from `doctor-agent list`)')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const [{ runLink, withTemporal }, { runView }, { formatRunView }] =
        await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts'), import('../format/run-view.ts')]);
      await withTemporal(async (t) => {
        const v = await runView(t.client, id);
        process.stdout.write((o.json ? JSON.stringify(v, null, 2) : formatRunView(v, runLink(t, id))) + '\n');
      });
    });
}
