/** `doctor-agent cancel RUN`: stops a run; its running jobs get SIGTERM (then SIGKILL) and checkpoint. */
import type { Command } from 'commander';

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .description('cancel a run (running jobs are stopped; `doctor-agent resume RUN` starts it again, reusing finished steps)')
    .argument('<run>', 'run id')
    .action(async (id: string) => {
      const [{ withTemporal }, { cancelRun }] = await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts')]);
      await withTemporal(async (t) => {
        await cancelRun(t.client, id);
        console.log(`cancellation requested for ${id}`);
      });
    });
}
