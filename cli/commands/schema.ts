/** `doctor-agent schema`: the JSON Schema of the pipeline language (for editors). */
import type { Command } from 'commander';
import { pipelineJsonSchema } from '../../dsl/json-schema.ts';

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .description('print the JSON Schema of pipeline files (for the YAML language server)')
    .action(() => {
      process.stdout.write(JSON.stringify(pipelineJsonSchema(), null, 2) + '\n');
    });
}
