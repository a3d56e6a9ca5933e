/**
 * The orphan guard. A job runs in its own process group; if the supervising process
 * dies — even by SIGKILL, when no cleanup code can run — the job must die too.
 *
 * The watchdog is a tiny /bin/sh process in a group of its own, whose stdin is a pipe
 * from the supervisor. The supervisor writes the job's process group id, and "done"
 * when it has finished with the job. If the pipe reaches end-of-file first, the
 * supervisor is gone (the kernel closes its pipes however it died), and the watchdog
 * kills the job's whole process group with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const SCRIPT = [
  'read pgid || exit 0',
  'read word',
  'if [ "$word" != done ]; then kill -9 -"$pgid" 2>/dev/null; fi',
  'exit 0',
].join('\n');

export class Watchdog {
  private readonly child: ChildProcess;
  private armed = false;

  constructor() {
    this.child = spawn('/bin/sh', ['-c', SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    this.child.on('error', () => {}); // no /bin/sh: the job still runs, only the guard is missing
    this.child.stdin!.on('error', () => {});
    this.child.unref();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Start guarding a process group. */
  arm(pgid: number): void {
    if (this.armed) throw new Error('watchdog already armed');
    this.armed = true;
    this.child.stdin!.write(`${pgid}\n`);
  }

  /** The supervisor has finished with the job (and killed its group itself): stand down. */
  disarm(): void {
    if (!this.child.stdin!.writableEnded) this.child.stdin!.end(this.armed ? 'done\n' : '');
  }
}
