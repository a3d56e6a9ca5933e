/** Small SFT / RL data sets from the knowledge-base generator, written to real files, and a job runner for child processes. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { generateKb } from '../../data/kb/generate.ts';
import type { JobMessage, JobSpec } from '../../contract/protocol.ts';
import { startJobProcess } from '../helpers/job-process.ts';

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `da-${name}-`));
}

/** Writes sft.json and verifiable.json of `n` knowledge-base items into dir. */
export function writeKbData(dir: string, n: number, seed = 7): { sft: string; verifiable: string } {
  mkdirSync(dir, { recursive: true });
  const kb = generateKb({ seed, trainSize: n, evalSize: 4, cotStyle: 'brief' });
  const sft = join(dir, 'sft.json');
  const verifiable = join(dir, 'verifiable.json');
  writeFileSync(sft, JSON.stringify(kb.sft));
  writeFileSync(verifiable, JSON.stringify(kb.verifiable));
  return { sft, verifiable };
}

/**
 * Starts jobs/main.ts on a spec in a child process (test/helpers/job-process.ts); `onMessage` sees each
 * protocol message. `done` is the exit code (null when killed); a failed job's stderr is printed.
 */
export function startJob(spec: JobSpec, onMessage: (m: JobMessage, child: ChildProcess) => void): { child: ChildProcess; done: Promise<number | null> } {
  const { child, done } = startJobProcess(spec, onMessage);
  return {
    child,
    done: done.then((r) => {
      if (r.code !== 0 && r.code !== null) process.stderr.write(r.stderr);
      return r.code;
    }),
  };
}
