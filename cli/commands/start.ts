/** `doctor-agent start --pipeline FILE`: starts a run and prints its id (no waiting). */
import type { Command } from 'commander';
import { compileWith, withPipelineOptions, type PipelineOptions } from './compile.ts';

export interface StartOptions extends PipelineOptions {
  pipeline: string;
  cache: boolean;
  worker: boolean;
}

/** The options of `start` (also those of the temporal CLI extensions that start a pipeline). */
export function withStartOptions(cmd: Command): Command {
  return withPipelineOptions(
    cmd
      .requiredOption('--pipeline <file>', 'pipeline YAML file')
      .option('--no-cache', 'run every step even if a cached result exists')
      .option('--no-worker', 'do not start a background worker (embedded server only; with a configured address none is started)'),
  );
}

/** Compiles the pipeline, starts the run, prints its id on stdout (a background worker and the Web UI link on stderr). */
export async function startPipeline(o: StartOptions): Promise<void> {
  const plan = compileWith(o.pipeline, o);
  const [{ planQueues, runLink, spawnBackgroundWorker, withTemporal }, { startRun }] =
    await Promise.all([import('../temporal.ts'), import('../../runtime/runs.ts')]);
  await withTemporal(async (t, store) => {
    const h = await startRun(t.client, plan, { noCache: !o.cache, searchAttributes: t.searchAttributes });
    console.log(h.workflowId);
    if (o.worker && t.server) {
      const w = spawnBackgroundWorker(t, store, planQueues(plan), h.workflowId);
      process.stderr.write(`background worker ${w.pid} (log: ${w.log})\n`);
    }
    const link = runLink(t, h.workflowId);
    if (link) process.stderr.write(`web UI: ${link}\n`);
  });
}

export function registerStart(program: Command): void {
  withStartOptions(
    program
      .command('start')
      .description('start a pipeline run in the background and print its id'),
  ).action((o: StartOptions) => startPipeline(o));
}
