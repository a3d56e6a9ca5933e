/** `doctor-agent pause RUN`: no new step starts until `doctor-agent resume RUN`; running steps finish. */
import type { Command } from 'commander';

export function registerPause(program: Command): void {
  program
    .command('pause')
    .description('pause a run: steps already running finish, no new step starts until resume')
    .argument('<run>', 'run id')
    .action(async (id: string) => {
      const [{ withTemporal }, { pauseRun }] = await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts')]);
      await withTemporal(async (t) => {
        await pauseRun(t.client, id);
        console.log(`paused ${id} (\`doctor-agent resume ${id}\` continues it)`);
      });
    });
}
