/**
 * `doctor-agent resume RUN`: a paused run continues; a failed, cancelled or terminated
 * run starts again as a new run of the same Plan, skipping every step whose result is
 * in the step cache; the others continue from the newest valid checkpoint they left.
 */
import type { Command } from 'commander';

export function registerResume(program: Command): void {
  program
    .command('resume')
    .description('continue a paused run, or re-run a failed/cancelled/terminated one reusing its cached steps')
    .argument('<run>', 'run id')
    .option('--no-worker', 'do not start a background worker for a restarted run (embedded server only)')
    .action(async (id: string, o: { worker: boolean }) => {
      const [{ spawnBackgroundWorker, planQueues, withTemporal }, { resumeRun, runInput }] =
        await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts')]);
      await withTemporal(async (t, store) => {
        const r = await resumeRun(t.client, id, t.searchAttributes);
        if (r.kind === 'signalled') return void console.log(`resumed ${id}`);
        console.log(`${id} restarted as ${r.id} (cached steps are skipped; unfinished ones continue from their newest checkpoint)`);
        if (o.worker && t.server) {
          const { plan } = await runInput(t.client, r.id);
          const w = spawnBackgroundWorker(t, store, planQueues(plan), r.id);
          console.log(`background worker ${w.pid} (log: ${w.log})`);
        }
        console.log(`follow it with \`doctor-agent status ${r.id}\` or \`doctor-agent logs ${r.id} --follow\``);
      });
    });
}
