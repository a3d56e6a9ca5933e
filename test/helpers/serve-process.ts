/**
 * `doctor-agent serve` as a user runs it: a real child process on 127.0.0.1, given to a test
 * body once it prints the line saying where it serves, then stopped with SIGTERM.
 */
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/doctor-agent.js');

/**
 * Runs `doctor-agent serve ARGS`, waits for a stdout line matching `ready` (its first group is the
 * server's URL), runs `body` with that URL, then sends SIGTERM and asserts the server exits with 0.
 * A server that exits before it is ready fails with its stderr.
 */
export async function withServe(args: string[], ready: RegExp, body: (url: string) => Promise<void>, env?: NodeJS.ProcessEnv): Promise<void> {
  const server = spawn(process.execPath, [BIN, 'serve', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  server.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => server.on('exit', (code) => r(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d;
        const m = ready.exec(out);
        if (m) resolve(m[1]);
      });
      server.on('exit', () => reject(new Error(`serve exited: ${stderr}`)));
    });
    await body(url);
  } finally {
    server.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
}
