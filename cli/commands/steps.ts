/** `doctor-agent steps [KIND]`: the step kinds, or one kind's parameters. */
import type { Command } from 'commander';
import { fieldRows } from '../../dsl/describe.ts';
import { allKinds, getKind } from '../../dsl/kinds/index.ts';
import { defaultRunner, describeRunner } from '../../dsl/kinds/types.ts';
import { didYouMean } from '../../dsl/suggest.ts';
import { table } from '../format/table.ts';

export function registerSteps(program: Command): void {
  program
    .command('steps')
    .description('list the step kinds; with KIND, show its parameters and outputs')
    .argument('[kind]', 'a step kind, e.g. train.sft')
    .action((name: string | undefined) => {
      if (!name) {
        const rows = allKinds().map((k) => [k.name, k.queue, Object.keys(k.outputs).join(', ') || '(with.outputs)', k.description]);
        process.stdout.write(table(['KIND', 'QUEUE', 'OUTPUTS', 'DESCRIPTION'], rows) + '\n\nRun `doctor-agent steps KIND` for its parameters.\n');
        return;
      }
      const kind = getKind(name);
      if (!kind) {
        process.stderr.write(`error: unknown step kind '${name}'${didYouMean(name, allKinds().map((k) => k.name))}; run 'doctor-agent steps' to list them\n`);
        process.exitCode = 1;
        return;
      }
      const out = [`${kind.name} — ${kind.description}`, `default queue: ${kind.queue}; runners: ${Object.entries(kind.runners).map(([n, r]) => `${n}${n === defaultRunner(kind) ? ' (default)' : ''} — ${r.description ?? describeRunner(r)}`).join('; ')}`, '', 'parameters (with:):'];
      const rows = fieldRows(kind.params).map((r) => [r.name, r.type, r.required ? 'required' : (r.default ?? ''), r.description]);
      out.push(table(['NAME', 'TYPE', 'DEFAULT', 'DESCRIPTION'], rows), '', 'outputs:');
      const outputs = Object.entries(kind.outputs);
      if (outputs.length) for (const [o, d] of outputs) out.push(`  ${o} — ${d}`);
      else out.push('  declared in with.outputs (name → path)');
      process.stdout.write(out.join('\n') + '\n');
    });
}
