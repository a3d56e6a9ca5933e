/**
 * `doctor-agent run FILE`: compile, make sure a server and a worker are there, start
 * the run, draw live progress, and exit with the run's result (0 succeeded, 1 not).
 * Ctrl-C detaches: a background worker takes over and the run keeps going.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { WorkerSet } from '../../worker.ts';
import { UserError } from '../../contract/errors.ts';
import { compileWith, withPipelineOptions, type PipelineOptions } from './compile.ts';

interface RunOptions extends PipelineOptions {
  pipeline?: string;
  cache: boolean;
  worker: boolean;
}

export function registerRun(program: Command): void {
  withPipelineOptions(
    program
      .command('run')
      .description('run a pipeline with live progress; exits 0 when it succeeds (Ctrl-C detaches, the run goes on)')
      .argument('[file]', 'pipeline YAML file')
      .option('--pipeline <file>', 'pipeline YAML file (instead of FILE, as in start)')
      .option('--no-cache', 'run every step even if a cached result exists')
      .option('--no-worker', 'do not run a worker in this process (use workers started elsewhere)'),
  ).action(async (arg: string | undefined, o: RunOptions) => {
    if (arg && o.pipeline && arg !== o.pipeline) throw new UserError(`two pipelines given: ${arg} and --pipeline ${o.pipeline}; give one`);
    const file = arg ?? o.pipeline;
    if (!file) throw new UserError('no pipeline given: pass FILE or --pipeline FILE');
    const plan = compileWith(file, o);
    const [{ planQueues, runLink, spawnBackgroundWorker, withTemporal }, { runView, startRun }, { ProgressView }, { formatRunView }, { runSummary }] =
      await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts'), import('../progress.ts'), import('../format/run-view.ts'), import('../format/run-summary.ts')]);
    await withTemporal(async (t, store) => {
      const queues = planQueues(plan);
      let workers: WorkerSet | undefined;
      let workersDone: Promise<void> | undefined;
      if (o.worker) {
        const { createWorkerSet } = await import('../../worker.ts');
        workers = await createWorkerSet({ ...t.target, store, queues });
        workersDone = workers.run();
      }
      // A run that cannot start stops this process's worker too (it would keep the command alive).
      const h = await startRun(t.client, plan, { noCache: !o.cache, searchAttributes: t.searchAttributes }).catch(async (err: unknown) => {
        workers?.shutdown();
        await workersDone;
        throw err;
      });
      const id = h.workflowId;
      process.stderr.write(`run ${id} started (${plan.steps.length} steps)\n`);
      const link = runLink(t, id);
      if (link) process.stderr.write(`web UI: ${link}\n`);

      let detached = false;
      const onInterrupt = () => {
        detached = true;
      };
      process.once('SIGINT', onInterrupt);
      const view = new ProgressView();
      try {
        for (;;) {
          const v = await runView(t.client, id, 2000).catch(() => undefined);
          if (v?.progress) view.update(v.progress);
          if (detached || (v && v.execution !== 'RUNNING')) break;
          await sleep(500);
        }
      } finally {
        view.stop();
        process.removeListener('SIGINT', onInterrupt);
      }

      if (detached) {
        if (workers) {
          const w = spawnBackgroundWorker(t, store, queues, id);
          process.stderr.write(`\ndetached: run ${id} keeps going in background worker ${w.pid} (log: ${w.log})\n`);
          workers.shutdown();
          await workersDone;
        } else {
          process.stderr.write(`\ndetached: run ${id} keeps going\n`);
        }
        process.stderr.write(`  doctor-agent status ${id}        where it stands\n  doctor-agent logs ${id} --follow  its logs\n  doctor-agent cancel ${id}        stop it\n`);
        process.exitCode = 130;
        return;
      }
      const final = await runView(t.client, id, 5000);
      workers?.shutdown();
      await workersDone;
      process.stdout.write(formatRunView(final, link) + runSummary(store, id, final.progress?.runDir ?? final.result?.runDir, { comparison: true }) + '\n');
      process.exitCode = final.execution === 'COMPLETED' ? 0 : 1;
    });
  });
}
