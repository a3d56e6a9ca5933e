/** The doctor-agent command line: builds the program from the registrars and runs it. */
import { Command } from 'commander';
import { CompileError } from '../dsl/diagnostics.ts';
import { UserError } from '../jobs/context.ts';
import { registrars } from './commands/index.ts';
import { installConnectionOptions } from './connection-flags.ts';

export function buildProgram(): Command {
  const program = new Command('doctor-agent')
    .description('Train medical reasoning models the HuatuoGPT-o1 way, declared as one YAML pipeline run on Temporal.')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions();
  for (const register of registrars) register(program);
  installConnectionOptions(program);
  return program;
}

/**
 * Prints a user error (no stack trace, then its hint when it has one) and sets exit code 1;
 * anything else is a bug and shows its stack. A user error is a UserError or a subclass
 * (e.g. DataError, whatever its name), or any error named 'UserError' or marked `user`.
 */
export function reportError(err: unknown): void {
  if (err instanceof CompileError) {
    process.stderr.write(err.format() + '\n');
  } else if (err instanceof UserError || (err instanceof Error && (err.name === 'UserError' || (err as { user?: boolean }).user))) {
    const hint = err instanceof UserError && err.hint ? `\n  ${err.hint}` : '';
    process.stderr.write(`error: ${err.message}${hint}\n`);
  } else {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exitCode = 1;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  reportError(err);
}
