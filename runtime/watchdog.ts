/**
 * The orphan guard. A job runs in its own process group; if the supervising process
 * dies — even by SIGKILL, when no cleanup code can run — the job must die too.
 *
 * One watchdog serves every job of a process: a tiny /bin/sh in a group of its own,
 * started on the first job and kept for the life of the process. Its stdin is a pipe
 * from the supervisor, which writes `arm PGID` when a job starts and `done PGID` once
 * it has finished with the job (and killed its group itself). If the pipe reaches
 * end-of-file, the supervisor is gone (the kernel closes its pipes however it died),
 * and the watchdog kills every group still armed with SIGKILL.
 *
 * One spawn per process instead of one per job: forking a large Node process costs
 * several milliseconds of CPU each time.
 */
import { spawn, type ChildProcess } from 'node:child_process';

// `armed` is a space-separated set: " 12 34 ". Removal uses parameter expansion only
// (no subshell, so no fork per job).
const SCRIPT = `
armed=" "
while read -r word pgid; do
  case "$pgid" in ''|*[!0-9]*) continue ;; esac
  case "$word" in
    arm) armed="$armed$pgid " ;;
    done) case "$armed" in *" $pgid "*) armed="\${armed%%" $pgid "*} \${armed#*" $pgid "}" ;; esac ;;
  esac
done
for p in $armed; do kill -9 -"$p" 2>/dev/null; done
exit 0
`;

export class Watchdog {
  private child: ChildProcess | undefined;
  /** Groups armed and not yet done: handed again to a new watchdog if this one dies. */
  private readonly armed = new Set<number>();

  /** The watchdog's pid, once started. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start guarding a process group. */
  arm(pgid: number): void {
    this.armed.add(pgid);
    if (!this.child) this.start();
    else this.send(`arm ${pgid}\n`);
  }

  /** Starts the watchdog process now if it is not running (arm() also does). */
  ensureStarted(): this {
    if (!this.child) this.start();
    return this;
  }

  /** The supervisor has finished with the job (and killed its group itself): stop guarding it. */
  disarm(pgid: number): void {
    if (!this.armed.delete(pgid)) return;
    this.send(`done ${pgid}\n`);
  }

  private start(): void {
    const child = spawn('/bin/sh', ['-c', SCRIPT], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    this.child = child;
    child.on('error', () => {}); // no /bin/sh: jobs still run, only the guard is missing
    child.stdin!.on('error', () => {});
    child.once('exit', () => {
      // Killed by someone: the next job starts a new one, which takes over the groups still armed.
      if (this.child === child) this.child = undefined;
    });
    // Neither the process nor its pipe may keep this process alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    for (const pgid of this.armed) this.send(`arm ${pgid}\n`);
  }

  private send(line: string): void {
    const stdin = this.child?.stdin;
    if (stdin && !stdin.destroyed && stdin.writable) stdin.write(line);
  }
}

let shared: Watchdog | undefined;

/** The watchdog of this process, running (started with the first job, kept after). */
export function processWatchdog(): Watchdog {
  return (shared ??= new Watchdog()).ensureStarted();
}
