/** `doctor-agent compile FILE [--json]`: the Plan as JSON, or a readable summary. */
import type { Command } from 'commander';
import { compileFile } from '../../dsl/compile.ts';
import { formatDuration } from '../../dsl/duration.ts';
import type { Plan } from '../../dsl/plan.ts';

export interface PipelineOptions {
  set?: string[];
  params?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Adds --set and --params to a command that takes a pipeline file. */
export function withPipelineOptions(cmd: Command): Command {
  return cmd
    .option('--set <name=value>', 'override a param (repeatable); the value is read as a YAML scalar', collect, [])
    .option('--params <file>', 'YAML file of param values');
}

/** Compiles with the command's options; a CompileError reaches main.ts, which prints it and exits 1. */
export function compileWith(file: string, opts: PipelineOptions): Plan {
  return compileFile(file, { set: opts.set, paramsFile: opts.params });
}

export function planSummary(plan: Plan): string {
  const lines = [
    `${plan.name}: ${plan.steps.length} step${plan.steps.length === 1 ? '' : 's'} (plan ${plan.hash.slice(0, 12)}, format ${plan.format})`,
    `sources: ${plan.sources.join(' → ')}`,
  ];
  if (plan.description) lines.push(plan.description);
  const params = Object.entries(plan.params);
  if (params.length) {
    lines.push('', 'params:');
    for (const [k, v] of params) lines.push(`  ${k} = ${JSON.stringify(v)}`);
  }
  lines.push('', 'steps (in order):');
  const width = Math.max(...plan.steps.map((s) => s.id.length));
  const kindWidth = Math.max(...plan.steps.map((s) => s.uses.length));
  for (const s of plan.steps) {
    const extra = [
      `queue ${s.queue}`,
      `attempts ${s.retry.maximumAttempts}`,
      `timeout ${formatDuration(s.timeouts.stepMs)}`,
      s.cache ? 'cached' : 'no cache',
      s.needs.length ? `needs ${s.needs.join(', ')}` : '',
      s.if ? `if ${s.if}` : '',
    ].filter(Boolean);
    lines.push(`  ${s.id.padEnd(width)}  ${s.uses.padEnd(kindWidth)}  ${extra.join(' · ')}`);
  }
  return lines.join('\n');
}

export function registerCompile(program: Command): void {
  withPipelineOptions(
    program
      .command('compile')
      .description('compile a pipeline to its Plan (JSON with --json, else a summary)')
      .argument('<file>', 'pipeline YAML file')
      .option('--json', 'print the Plan as JSON'),
  ).action((file: string, opts: PipelineOptions & { json?: boolean }) => {
    const plan = compileWith(file, opts);
    process.stdout.write((opts.json ? JSON.stringify(plan, null, 2) : planSummary(plan)) + '\n');
  });
}
