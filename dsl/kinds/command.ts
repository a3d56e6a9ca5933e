import { z } from 'zod';
import type { StepKind } from './types.ts';

export const CommandParams = z
  .strictObject({
    run: z
      .union([z.array(z.string()).min(1), z.string().min(1)])
      .describe('argv array, the program first, e.g. [python, train.py, --lr, "1e-5"]; a single string only with shell: true.'),
    shell: z.boolean().default(false).describe('Run `run` (then a single string) through /bin/sh; every `${{ }}` value in it is quoted for the shell, one word each: write it outside quotes.'),
    env: z.record(z.string(), z.string()).default({}).describe('Extra environment variables.'),
    cwd: z.string().optional().describe('Working directory (the step folder when absent).'),
    outputs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}).describe('Output name → path (relative to the step folder); these are the step\'s outputs.'),
    checkpoints: z.string().optional().describe('Glob of checkpoint folders or files, relative to the step folder; the newest is resumed from.'),
    resume_args: z.array(z.string()).optional().describe('Arguments appended on resume; {checkpoint} is replaced by the checkpoint path.'),
    progress_regex: z.string().optional().describe('Regex over log lines with named groups current and total.'),
    success_codes: z.array(z.number().int()).min(1).default([0]).describe('Exit codes that count as success.'),
  })
  .superRefine((p, ctx) => {
    if (!p.shell && typeof p.run === 'string') {
      ctx.addIssue({ code: 'custom', path: ['run'], message: 'run must be an argv array such as [python, train.py] (a single string only with shell: true)' });
    }
    if (p.shell && Array.isArray(p.run)) {
      ctx.addIssue({ code: 'custom', path: ['run'], message: 'with shell: true, run must be one command string' });
    }
    if (p.resume_args && !p.resume_args.some((a) => a.includes('{checkpoint}'))) {
      ctx.addIssue({ code: 'custom', path: ['resume_args'], message: 'resume_args must contain {checkpoint}, e.g. [--resume_from_checkpoint, "{checkpoint}"]' });
    }
    if (p.progress_regex !== undefined) {
      let re: RegExp | undefined;
      try {
        re = new RegExp(p.progress_regex);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['progress_regex'], message: `invalid regex: ${(err as Error).message}` });
      }
      if (re && !/\(\?<current>/.test(p.progress_regex)) {
        ctx.addIssue({ code: 'custom', path: ['progress_regex'], message: 'progress_regex needs a named group (?<current>...) (and optionally (?<total>...))' });
      }
    }
  });
export type CommandParams = z.infer<typeof CommandParams>;

export const command: StepKind = {
  name: 'command',
  description: 'Run any external program (argv array) under the job supervisor; outputs are declared in with.outputs.',
  params: CommandParams,
  outputs: {},
  queue: 'cpu',
  runners: { command: { type: 'command', description: 'the program named in with.run, run under the job supervisor' } },
  declaredOutputs: (p) => Object.keys((p.outputs as Record<string, unknown> | undefined) ?? {}),
};
