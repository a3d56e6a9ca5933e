/** `doctor-agent worker [--queues cpu,gpu] [--until-done RUN]`: runs workflows and step activities. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { ResolvedTarget, Temporal } from '../../runtime/client.ts';
import { ArtifactStore } from '../../runtime/store.ts';
import { UserError } from '../../contract/errors.ts';
import { connectionFlags } from '../connection-flags.ts';

/**
 * The queues served when --queues is not given: the same list as DEFAULT_QUEUES in
 * worker.ts (test/cli/startup.test.ts checks), written here so that showing the help
 * does not load the Temporal worker.
 */
const DEFAULT_QUEUES = ['cpu', 'gpu'];

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker: the pipeline workflow and the step activities of the given queues')
    .option('--queues <list>', 'comma-separated step queues to serve', DEFAULT_QUEUES.join(','))
    .option('--no-workflows', 'serve step activities only (e.g. on a GPU machine)')
    .option('--until-done <run>', 'exit once this run is over')
    .action(async (o: { queues: string; workflows: boolean; untilDone?: string }) => {
      const queues = o.queues.split(',').map((q) => q.trim()).filter(Boolean);
      if (queues.length === 0) throw new UserError(`--queues "${o.queues}": no queue name; give a comma-separated list, e.g. --queues cpu,gpu`);
      const { connectWorkerSet } = await import('../../worker.ts');
      const store = new ArtifactStore();
      const { set, target } = await connectWorkerSet({ store, flags: connectionFlags, log: (l) => console.log(l) }, { store, queues, workflows: o.workflows });
      let stopping = false;
      const stop = (why: string) => {
        if (stopping) return;
        stopping = true;
        console.log(`worker ${process.pid}: ${why}; stopping (running jobs checkpoint first)`);
        set.shutdown();
      };
      process.once('SIGINT', () => stop('interrupted'));
      process.once('SIGTERM', () => stop('terminated'));
      console.log(`worker ${process.pid} on ${target.address}, namespace ${target.namespace}: ${set.queues.join(', ')} (store ${store.root})`);
      if (o.untilDone) void watchRun(target, o.untilDone, () => stop(`run ${o.untilDone} is over`));
      await set.run();
    });
}

/** Server unreachable this long (it may be restarting): stop watching, and stop the worker. */
const GIVE_UP_MS = 10 * 60_000;

/** Polls the run until it is closed, then calls done. */
async function watchRun(target: ResolvedTarget, id: string, done: () => void): Promise<void> {
  const { connectTemporal } = await import('../../runtime/client.ts');
  let t: Temporal | undefined;
  let lastSeen = Date.now();
  try {
    while (Date.now() - lastSeen < GIVE_UP_MS) {
      try {
        t ??= await connectTemporal({ target });
        const d = await t.client.workflow.getHandle(id).describe();
        lastSeen = Date.now();
        if (d.status.name !== 'RUNNING') break;
      } catch (err) {
        if ((err as Error).name === 'WorkflowNotFoundError') break;
      }
      await sleep(2000);
    }
  } finally {
    await t?.close().catch(() => {});
  }
  done();
}
