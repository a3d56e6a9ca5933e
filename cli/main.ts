/** The doctor-agent command line: builds the program from the registrars and runs it. */
import { Command } from 'commander';
import { registrars } from './commands/index.ts';
import { installConnectionOptions } from './connection-flags.ts';
import { reportError } from './report-error.ts';

export function buildProgram(): Command {
  const program = new Command('doctor-agent')
    .description('Train medical reasoning models the HuatuoGPT-o1 way, declared as one YAML pipeline run on Temporal.')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions();
  for (const register of registrars) register(program);
  installConnectionOptions(program);
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  reportError(err);
}
