/** `doctor-agent validate FILE...`: checks pipelines, printing every error found. */
import type { Command } from 'commander';
import { CompileError } from '../../dsl/diagnostics.ts';
import { compileWith, withPipelineOptions, type PipelineOptions } from './compile.ts';

export function registerValidate(program: Command): void {
  withPipelineOptions(
    program
      .command('validate')
      .description('check pipeline files; prints FILE:LINE:COL for each error, exit code 1 when any')
      .argument('<files...>', 'pipeline YAML files'),
  ).action((files: string[], opts: PipelineOptions) => {
    let failed = 0;
    for (const file of files) {
      try {
        const plan = compileWith(file, opts);
        process.stdout.write(`${file}: ok (${plan.name}, ${plan.steps.length} steps)\n`);
      } catch (err) {
        if (!(err instanceof CompileError)) throw err;
        failed++;
        process.stderr.write(err.format() + '\n');
      }
    }
    if (failed) process.exitCode = 1;
  });
}
