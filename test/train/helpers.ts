/** Small SFT / RL data sets from the knowledge-base generator, written to real files, and a job runner for child processes. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKb } from '../../data/kb/generate.ts';
import type { JobMessage } from '../../runtime/protocol.ts';

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

const MAIN = new URL('../../jobs/main.ts', import.meta.url).pathname;

/** Starts jobs/main.ts on a spec in a child process; `onMessage` sees each protocol line. */
export function startJob(specPath: string, onMessage: (m: JobMessage, child: ChildProcess) => void): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, specPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onMessage(JSON.parse(line) as JobMessage, child);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(err);
    resolve(code);
  }));
  return { child, done };
}

export function writeSpec(dir: string, spec: Record<string, unknown>): string {
  const path = join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(spec));
  return path;
}
