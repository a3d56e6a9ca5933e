/**
 * A built-in job run the way the supervisor runs it: `node --import tsx jobs/main.ts SPEC` in a
 * real child process speaking the JSON-lines protocol (contract/protocol.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseJobLine, type JobMessage, type JobSpec } from '../../contract/protocol.ts';
import { isProblem, resolveRunner } from '../../runtime/runners.ts';

const ROOT = join(import.meta.dirname, '../..');

export interface JobExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Every protocol message, in order (other output lines are plain logs and left out). */
  messages: JobMessage[];
  stderr: string;
}

/** Starts the job; `onMessage` sees each protocol message as it arrives (and may kill the child). */
export function startJobProcess(spec: JobSpec, onMessage: (m: JobMessage, child: ChildProcess) => void = () => {}): { child: ChildProcess; done: Promise<JobExit> } {
  const specPath = join(mkdtempSync(join(tmpdir(), 'job-spec-')), 'spec.json');
  // The job module, as the supervisor names it: the kind's declared built-in runner.
  const runner = spec.module ? undefined : resolveRunner(spec.kind, 'builtin');
  if (runner && (isProblem(runner) || runner.type !== 'builtin')) throw new Error(`kind ${spec.kind} has no built-in job`);
  writeFileSync(specPath, JSON.stringify(runner ? { ...spec, module: runner.module } : spec));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'jobs/main.ts'), specPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: JobMessage[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = parseJobLine(line);
    if (!m) return;
    messages.push(m);
    onMessage(m, child);
  });
  const done = new Promise<JobExit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, messages, stderr })));
  return { child, done };
}

/** Runs the job to its end. */
export function runJobProcess(spec: JobSpec): Promise<JobExit> {
  return startJobProcess(spec).done;
}

/** Processes (Linux /proc) whose command line contains `text`, e.g. a job's spec path. */
export function pidsWithCommandLine(text: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}
