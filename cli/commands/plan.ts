/** `doctor-agent plan FILE`: the pipeline's DAG drawn in the terminal. */
import type { Command } from 'commander';
import { drawPlan } from '../format/dag.ts';
import { compileWith, withPipelineOptions, type PipelineOptions } from './compile.ts';

export function registerPlan(program: Command): void {
  withPipelineOptions(
    program
      .command('plan')
      .description('draw the pipeline DAG: layers, edges, step kinds and queues')
      .argument('<file>', 'pipeline YAML file'),
  ).action((file: string, opts: PipelineOptions) => {
    process.stdout.write(drawPlan(compileWith(file, opts)) + '\n');
  });
}
