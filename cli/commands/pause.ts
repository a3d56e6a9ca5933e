/** `doctor-agent pause RUN`: no new step starts until `doctor-agent resume RUN`; running steps finish. */
import type { Command } from 'commander';
import { pauseRun } from '../../runtime/runs.ts';
import { withTemporal } from '../temporal.ts';

export function registerPause(program: Command): void {
  program
    .command('pause')
    .description('pause a run: steps already running finish, no new step starts until resume')
    .argument('<run>', 'run id')
    .action(async (id: string) =>
      withTemporal(async (t) => {
        await pauseRun(t.client, id);
        console.log(`paused ${id} (\`doctor-agent resume ${id}\` continues it)`);
      }));
}
